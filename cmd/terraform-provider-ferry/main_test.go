package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-dev/terraform-provider-ferry/bundle"
	"github.com/ferry-dev/terraform-provider-ferry/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestExampleBundlePlan builds the provider, points Terraform at it with dev_overrides (what
// `make dev-override` writes), and checks that `terraform plan` of examples/data-sources/ferry_bundle
// prints the digest of a bundle pushed by `ferry bundle push` — with no provider download.
func TestExampleBundlePlan(t *testing.T) {
	testenv.SkipShort(t, "Terraform and a registry")
	tf := os.Getenv("TF_ACC_TERRAFORM_PATH")
	if tf == "" {
		t.Fatal("TF_ACC_TERRAFORM_PATH is not set; run through make test (tests never download Terraform)")
	}
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	client, err := bundle.NewClient(bundle.ClientOptions{PlainHTTP: true, Credentials: bundle.StaticCredentials(nil, nil)})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := bundle.ParseReference(reg.Addr + "/shop/bundle:1.4.0")
	if err != nil {
		t.Fatal(err)
	}
	res, err := bundle.Push(context.Background(), client, "../../examples/release", ref, bundle.PushOptions{
		PackOptions: bundle.PackOptions{Offline: true, Created: time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)},
	})
	if err != nil {
		t.Fatal(err)
	}

	bin := t.TempDir()
	if out, err := exec.Command("go", "build", "-o", filepath.Join(bin, "terraform-provider-ferry"), ".").CombinedOutput(); err != nil {
		t.Fatalf("build provider: %v\n%s", err, out)
	}
	rc := filepath.Join(t.TempDir(), "dev.tfrc")
	cfg := fmt.Sprintf("provider_installation {\n  dev_overrides {\n    \"registry.terraform.io/ferry-dev/ferry\" = %q\n  }\n  direct {}\n}\n", bin)
	if err := os.WriteFile(rc, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	example, err := os.ReadFile("../../examples/data-sources/ferry_bundle/data-source.tf")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "main.tf"), example, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(tf, "plan", "-no-color", "-input=false", "-var", "reference="+reg.Addr+"/shop/bundle:1.4.0")
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "TF_CLI_CONFIG_FILE="+rc, "CHECKPOINT_DISABLE=1", "DOCKER_CONFIG="+t.TempDir(), "FERRY_CACHE_DIR="+t.TempDir())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("terraform plan: %v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	for _, want := range []string{
		`digest                 = "` + res.Digest + `"`,
		`pinned_reference       = "` + reg.Addr + `/shop/bundle@` + res.Digest + `"`,
		`opentofu_module_source = "oci://` + reg.Addr + `/shop/bundle?digest=` + res.Digest + `"`,
	} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("terraform plan output lacks %q:\n%s", want, stdout.String())
		}
	}
}

package fleet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/ferry-dev/terraform-provider-ferry/bundle"
	"github.com/ferry-dev/terraform-provider-ferry/internal/testenv"
)

// TestTerraformExecutorWithProvider applies a customer root module with ferry's provider (built
// from this tree, installed from a local mirror by the executor's own terraform init: nothing is
// downloaded) against a real registry, Kubernetes and Argo CD: the first bundle ends with the
// Application synced to its digest; a bundle whose manifest the API server rejects fails with
// the class the provider's diagnostic names (permanent), read from Terraform's output.
func TestTerraformExecutorWithProvider(t *testing.T) {
	tf := testenv.Terraform(t)
	e := testenv.Start(t, testenv.Options{Registry: true, ArgoCD: true})

	_, cfg := testenv.ProviderMirror(t, "registry.terraform.io")

	const env, app = "fleet-exec", "shop-fleet-exec"
	repo := e.Registry.Addr + "/apps/" + app
	good := pushTestRelease(t, repo, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  value: v1\n")
	bad := pushTestRelease(t, repo, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Bad_Name\ndata:\n  value: v2\n")

	dir := t.TempDir()
	root := testenv.ProviderConfig(e) + fmt.Sprintf(`
terraform {
  required_providers {
    ferry = {
      source = "ferry-dev/ferry"
    }
  }
}

variable "bundle" {
  type = string
}

resource "ferry_environment" "env" {
  name                = %[2]q
  namespaces          = [%[2]q]
  source_repositories = ["oci://%[1]s/apps/*"]
  cluster_resources   = ["Namespace"]
  cluster {
    server          = %[3]q
    bearer_token_wo = %[4]q
    insecure        = true
  }
}

resource "ferry_application" "app" {
  name        = %[5]q
  environment = ferry_environment.env.project
  bundle      = var.bundle
  namespace   = %[2]q
  sync_options {
    create_namespace = true
  }
  timeouts {
    create = "3m"
    update = "3m"
  }
}
`, e.Registry.Addr, env, e.ArgoCD.ClusterServer, e.Cluster.Token, app)
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(root), 0o644); err != nil {
		t.Fatal(err)
	}
	ex, err := NewTerraform(TerraformSettings{Binary: tf, Env: map[string]string{"TF_CLI_CONFIG_FILE": cfg}})
	if err != nil {
		t.Fatal(err)
	}
	target := Target{Name: env, Application: app, Dir: dir}
	ctx := context.Background()

	var out bytes.Buffer
	if err := ex.Apply(ctx, target, Bundle{Reference: repo, Digest: good.Digest}, &out); err != nil {
		t.Fatalf("Apply(good bundle) error = %v\noutput:\n%s", err, out.String())
	}
	live := e.ArgoCD.Application(t, app)
	rev, _, _ := unstructured.NestedString(live.Object, "status", "sync", "revision")
	if rev != good.Digest {
		t.Errorf("Application %s synced to %q, want %s", app, rev, good.Digest)
	}
	if !strings.Contains(out.String(), "Installing ferry-dev/ferry v0.0.1") {
		t.Errorf("output does not show the provider installed by init:\n%s", out.String())
	}

	out.Reset()
	err = ex.Apply(ctx, target, Bundle{Reference: repo, Digest: bad.Digest}, &out)
	t.Logf("Apply(bad bundle) error: %v", err)
	var ce *ClassError
	if !errors.As(err, &ce) || ce.Class != "permanent" || !strings.Contains(err.Error(), "failure of Application "+app) {
		t.Fatalf("Apply(bad bundle) error = %v, want the provider's permanent failure of %s\noutput:\n%s", err, app, out.String())
	}
}

// pushTestRelease pushes a release of one manifest to repo and returns the push result.
func pushTestRelease(t *testing.T, repo, manifest string) *bundle.PushResult {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"ferry.yaml": "apiVersion: ferry.dev/v1\nkind: Bundle\nname: shop\nversion: 1.0.0\nmanifests: m\n",
		"m/cm.yaml":  manifest,
	}
	for p, c := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c, err := bundle.NewClient(bundle.ClientOptions{PlainHTTP: true, Credentials: bundle.StaticCredentials(nil, nil)})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := bundle.ParseReference(repo)
	if err != nil {
		t.Fatal(err)
	}
	res, err := bundle.Push(context.Background(), c, dir, ref, bundle.PushOptions{PackOptions: bundle.PackOptions{Created: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

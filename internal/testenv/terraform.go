package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// Terraform returns the terraform binary the tests run: TF_ACC_TERRAFORM_PATH, else terraform on
// PATH. Tests never download Terraform. It skips t under -short.
func Terraform(t testing.TB) string {
	t.Helper()
	SkipShort(t, "Terraform")
	if p := os.Getenv("TF_ACC_TERRAFORM_PATH"); p != "" {
		return p
	}
	p, err := exec.LookPath("terraform")
	if err != nil {
		t.Fatal("terraform is not on PATH and TF_ACC_TERRAFORM_PATH is not set; tests never download it")
	}
	return p
}

// ProviderVersion is the version ProviderMirror gives the provider it builds.
const ProviderVersion = "0.0.1"

// ProviderMirror builds ferry's provider from this module into a filesystem mirror as
// HOST/ferry-dev/ferry ProviderVersion (host: registry.terraform.io for Terraform,
// registry.opentofu.org for OpenTofu). It returns the mirror's directory and a CLI configuration
// file (TF_CLI_CONFIG_FILE, TOFU_CLI_CONFIG_FILE) that installs ferry-dev/ferry from the mirror and
// no provider from the network.
func ProviderMirror(t testing.TB, host string) (mirror, cliConfig string) {
	t.Helper()
	mirror = t.TempDir()
	bin := filepath.Join(mirror, host, "ferry-dev", "ferry", ProviderVersion, runtime.GOOS+"_"+runtime.GOARCH, "terraform-provider-ferry_v"+ProviderVersion)
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/ferry-dev/terraform-provider-ferry/cmd/terraform-provider-ferry").CombinedOutput(); err != nil {
		t.Fatalf("go build the provider: %v\n%s", err, out)
	}
	cliConfig = filepath.Join(t.TempDir(), "mirror.tfrc")
	rc := fmt.Sprintf("provider_installation {\n  filesystem_mirror {\n    path    = %q\n    include = [\"%s/ferry-dev/ferry\"]\n  }\n  direct {\n    exclude = [\"*/*/*\"]\n  }\n}\n", mirror, host)
	if err := os.WriteFile(cliConfig, []byte(rc), 0o644); err != nil {
		t.Fatal(err)
	}
	return mirror, cliConfig
}

// ProviderConfig returns the `provider "ferry"` block of a root module that uses e: the cluster's
// kubeconfig, e's Argo CD namespace and its registry over plain HTTP.
func ProviderConfig(e *Env) string {
	return fmt.Sprintf(`
provider "ferry" {
  kubernetes {
    config_path = %[1]q
  }
  argocd_namespace = %[2]q
  registry {
    address    = %[3]q
    plain_http = true
  }
}
`, e.Cluster.Kubeconfig, e.ArgoCD.Namespace, e.Registry.Addr)
}

// TerraformCommand returns tf with args, run in dir with the CLI configuration cliConfig, no
// input, no checkpoint call and Terraform's automation output.
func TerraformCommand(tf, dir, cliConfig string, args ...string) *exec.Cmd {
	cmd := exec.Command(tf, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TF_CLI_CONFIG_FILE="+cliConfig, "TF_IN_AUTOMATION=1", "TF_INPUT=0", "CHECKPOINT_DISABLE=1")
	return cmd
}

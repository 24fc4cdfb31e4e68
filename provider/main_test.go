package provider

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/terraform-plugin-go/tfprotov6"

	"github.com/ferry-dev/terraform-provider-ferry/internal/testenv"
)

// testProviderFactories serves the provider in-process to the real Terraform CLI, as the binary
// serves it (NewServer: the framework's server with the plan shortcut).
var testProviderFactories = map[string]func() (tfprotov6.ProviderServer, error){
	"ferry": NewServer("test"),
}

// TestMain makes sure no test can download Terraform (TF_ACC_TERRAFORM_PATH must name the binary
// on this machine), gives Terraform an empty CLI configuration, and fails the run when a process
// started by testenv outlives the tests. Under -short (make unit) the Terraform tests skip
// (testenv.SkipShort), so Terraform need not be installed.
func TestMain(m *testing.M) {
	flag.Parse() // for testing.Short
	if os.Getenv("TF_ACC_TERRAFORM_PATH") == "" {
		if !testing.Short() {
			fmt.Fprintln(os.Stderr, "TF_ACC_TERRAFORM_PATH is not set: run the tests through `make test`, or export TF_ACC_TERRAFORM_PATH=$(command -v terraform); tests never download Terraform")
			os.Exit(1)
		}
		// A Terraform test that forgot to skip fails on this path instead of downloading Terraform.
		os.Setenv("TF_ACC_TERRAFORM_PATH", "/nonexistent/terraform-is-not-used-under-short")
	}
	if os.Getenv("TF_ACC_TERRAFORM_VERSION") != "" {
		fmt.Fprintln(os.Stderr, "TF_ACC_TERRAFORM_VERSION is set: unset it, it makes terraform-plugin-testing download Terraform")
		os.Exit(1)
	}
	dir, err := os.MkdirTemp("", "ferry-tf-")
	if err != nil {
		panic(err)
	}
	rc := filepath.Join(dir, "terraformrc")
	if err := os.WriteFile(rc, nil, 0o644); err != nil {
		panic(err)
	}
	os.Setenv("TF_CLI_CONFIG_FILE", rc)
	os.Setenv("CHECKPOINT_DISABLE", "1")
	os.Setenv(EnvCacheDir, filepath.Join(dir, "cache"))
	defer os.RemoveAll(dir)
	testenv.Main(m)
}

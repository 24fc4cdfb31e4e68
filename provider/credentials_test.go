package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ferry-dev/terraform-provider-ferry/internal/argocd"
	"github.com/ferry-dev/terraform-provider-ferry/internal/testenv"
)

// execProviderConfig configures the kubernetes block with host, CA and an exec block running
// plugin with env, plus an environment resource named name.
func execProviderConfig(e *testenv.Env, plugin string, env map[string]string, name string) string {
	var envHCL strings.Builder
	for k, v := range env {
		fmt.Fprintf(&envHCL, "        %s = %q\n", k, v)
	}
	return fmt.Sprintf(`
provider "ferry" {
  argocd_namespace = %[1]q
  kubernetes {
    host                   = %[2]q
    cluster_ca_certificate = %[3]q
    exec {
      api_version = "client.authentication.k8s.io/v1"
      command     = %[4]q
      args        = ["--cluster", "testenv"]
      env = {
%[5]s      }
    }
  }
}

resource "ferry_environment" "env" {
  name                = %[6]q
  source_repositories = ["oci://registry.example.com/shop/*"]
  cluster {
    server   = %[7]q
    insecure = true
  }
}
`, e.ArgoCD.Namespace, e.Cluster.Host, string(e.Cluster.CAData), plugin, envHCL.String(), name, e.ArgoCD.ClusterServer)
}

// TestAccKubernetesExec manages an environment through a provider whose kubernetes block has host,
// cluster_ca_certificate and an exec block: a real client.authentication.k8s.io/v1 plugin that
// returns a token of the test API server. A plugin that fails gives an error naming
// kubernetes.exec, with the plugin's message.
func TestAccKubernetesExec(t *testing.T) {
	e := sharedEnv.Get(t)
	plugin := testenv.BuildCommand(t, "execcred")
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(e.Cluster.Token), 0o600); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(dir, "exec.log")
	name := uniqueName(t, "exec")

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testProviderFactories,
		Steps: []resource.TestStep{{
			Config: execProviderConfig(e, plugin, map[string]string{"EXECCRED_TOKEN_FILE": tokenFile, "EXECCRED_LOG": log}, name),
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue("ferry_environment.env", tfjsonpath.New("name"), knownvalue.StringExact(name)),
			},
			Check: func(*terraform.State) error {
				_, err := e.Cluster.Dynamic(t).Resource(argocd.AppProjectGVR).Namespace(e.ArgoCD.Namespace).Get(context.Background(), name, metav1.GetOptions{})
				return err
			},
		}},
	})
	if calls, _ := os.ReadFile(log); !strings.Contains(string(calls), `"apiVersion":"client.authentication.k8s.io/v1"`) {
		t.Errorf("the plugin saw KUBERNETES_EXEC_INFO %q, want a v1 ExecCredential", calls)
	}

	failing := map[string]string{"EXECCRED_FAIL": "execcred: the session expired; run execcred login"}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testProviderFactories,
		Steps: []resource.TestStep{{
			Config:      execProviderConfig(e, plugin, failing, uniqueName(t, "exec-failing")),
			ExpectError: regexp.MustCompile(`(?s)exec\s+plugin\s+"[^"]*execcred"\s+\(kubernetes\.exec\).*the\s+session\s+expired;\s+run\s+execcred\s+login.*run\s+the\s+plugin\s+by\s+hand`),
		}},
	})
}

// TestAccBundleDataSourceCredentialHelper reads a bundle from a registry with htpasswd auth whose
// registry block names only the transport (plain_http), so the credential comes from a real
// docker credential helper on PATH (credHelpers). A helper that fails gives an error naming it,
// with its message.
func TestAccBundleDataSourceCredentialHelper(t *testing.T) {
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{Auth: true})
	res, _ := pushTestBundle(t, reg, "shop/bundle")
	helper := testenv.BuildCommand(t, "docker-credential-ferrytest")
	t.Setenv("PATH", filepath.Dir(helper)+string(os.PathListSeparator)+os.Getenv("PATH"))
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"credHelpers":{"`+reg.Addr+`":"ferrytest"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	store, _ := json.Marshal(map[string]map[string]string{reg.Addr: {"Username": reg.Username, "Secret": reg.Password}})
	if err := os.WriteFile(filepath.Join(dir, "store.json"), store, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", dir)
	t.Setenv("FERRYTEST_CREDS", filepath.Join(dir, "store.json"))
	t.Setenv("FERRYTEST_LOG", filepath.Join(dir, "helper.log"))
	t.Setenv(EnvCacheDir, t.TempDir())
	config := providerConfig(reg.Addr, "") + fmt.Sprintf(`data "ferry_bundle" "x" { reference = %q }`, reg.Addr+"/shop/bundle:1.4.0")

	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testProviderFactories,
		Steps: []resource.TestStep{{
			Config: config,
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue("data.ferry_bundle.x", tfjsonpath.New("digest"), knownvalue.StringExact(res.Digest)),
			},
		}},
	})
	if calls, _ := os.ReadFile(filepath.Join(dir, "helper.log")); !strings.Contains(string(calls), "get "+reg.Addr+"\n") {
		t.Errorf("helper calls = %q, want get %s", calls, reg.Addr)
	}

	t.Setenv("FERRYTEST_FAIL", "the vault is sealed")
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testProviderFactories,
		Steps: []resource.TestStep{{
			Config:      config,
			ExpectError: regexp.MustCompile(`(?s)Registry\s+Access\s+Denied.*credential\s+helper\s+docker-credential-ferrytest\s+\(credHelpers\s+entry.*the\s+vault\s+is\s+sealed`),
		}},
	})
}

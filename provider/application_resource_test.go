package provider

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/ferry-dev/terraform-provider-ferry/bundle"
	"github.com/ferry-dev/terraform-provider-ferry/internal/testenv"
)

// pushRelease pushes a release with the given manifests to the shared registry and returns the
// pinned reference.
func pushRelease(t *testing.T, e *testenv.Env, repo string, manifests map[string]string) *bundle.PushResult {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{"ferry.yaml": "apiVersion: ferry.dev/v1\nkind: Bundle\nname: shop\nversion: 1.0.0\nmanifests: m\n"}
	for k, v := range manifests {
		files["m/"+k] = v
	}
	for p, c := range files {
		full := filepath.Join(dir, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c, err := bundle.NewClient(bundle.ClientOptions{PlainHTTP: true, Credentials: bundle.StaticCredentials(nil, nil)})
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := bundle.ParseReference(e.Registry.Addr + "/" + repo)
	res, err := bundle.Push(context.Background(), c, dir, ref, bundle.PushOptions{PackOptions: bundle.PackOptions{Created: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func configMap(name, value string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\ndata:\n  value: %q\n", name, value)
}

// appConfig is an environment plus an application of the pushed bundle.
func appConfig(e *testenv.Env, env, app, pinned, extra string) string {
	return kubeProviderConfig(e) + fmt.Sprintf(`
resource "ferry_environment" "env" {
  name                = %[1]q
  namespaces          = [%[1]q]
  source_repositories = ["oci://%[2]s/apps/*"]
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
  bundle      = %[6]q
  namespace   = %[1]q
  sync_options {
    create_namespace = true
  }
%[7]s
}
`, env, e.Registry.Addr, e.ArgoCD.ClusterServer, e.Cluster.Token, app, pinned, extra)
}

func TestAccApplicationSync(t *testing.T) {
	e := sharedEnv.Get(t)
	env := uniqueName(t, "env")
	app := uniqueName(t, "app")
	v1 := pushRelease(t, e, "apps/"+app, map[string]string{"cm.yaml": configMap("settings", "v1")})
	v2 := pushRelease(t, e, "apps/"+app, map[string]string{"cm.yaml": configMap("settings", "v2")})
	addr := "ferry_application.app"
	synced := func(digest string) []statecheck.StateCheck {
		return []statecheck.StateCheck{
			statecheck.ExpectKnownValue(addr, tfjsonpath.New("sync_status"), knownvalue.StringExact("Synced")),
			statecheck.ExpectKnownValue(addr, tfjsonpath.New("health_status"), knownvalue.StringExact("Healthy")),
			statecheck.ExpectKnownValue(addr, tfjsonpath.New("synced_revision"), knownvalue.StringExact(digest)),
			statecheck.ExpectKnownValue(addr, tfjsonpath.New("last_operation").AtMapKey("phase"), knownvalue.StringExact("Succeeded")),
		}
	}
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testProviderFactories,
		Steps: []resource.TestStep{
			{Config: appConfig(e, env, app, v1.PinnedReference, ""), ConfigStateChecks: synced(v1.Digest)},
			{Config: appConfig(e, env, app, v2.PinnedReference, ""), ConfigStateChecks: synced(v2.Digest)},
		},
	})
}

package provider

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/ferry-dev/terraform-provider-ferry/bundle"
	"github.com/ferry-dev/terraform-provider-ferry/internal/argocd"
	"github.com/ferry-dev/terraform-provider-ferry/internal/testenv"
)

// TestAccEnvironmentSignaturePolicy: an environment with a signature_policy refuses an
// application whose bundle is not signed by one of its keys — the apply fails with class
// permanent and no Application is written — and deploys one signed by the new of two trusted
// keys (rotation); once the environment exists, a change to an unsigned bundle fails the plan.
func TestAccEnvironmentSignaturePolicy(t *testing.T) {
	e := sharedEnv.Get(t)
	env, app := uniqueName(t, "env"), uniqueName(t, "app")
	dir := t.TempDir()
	keys := map[string]*bundle.SigningKey{}
	for _, name := range []string{"old", "new"} {
		priv, pub, err := bundle.GenerateKeyPair([]byte("pw"))
		if err != nil {
			t.Fatal(err)
		}
		if keys[name], err = bundle.LoadSigningKey(priv, []byte("pw")); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, name+".pub"), pub, 0o644)
	}
	c, err := bundle.NewClient(bundle.ClientOptions{PlainHTTP: true, Credentials: bundle.StaticCredentials(nil, nil)})
	if err != nil {
		t.Fatal(err)
	}
	push := func(value string, key *bundle.SigningKey) *bundle.PushResult {
		t.Helper()
		rel := t.TempDir()
		writeFile(t, filepath.Join(rel, "ferry.yaml"), "apiVersion: ferry.dev/v1\nkind: Bundle\nname: shop\nversion: 1.0.0\nmanifests: m\n")
		writeFile(t, filepath.Join(rel, "m", "cm.yaml"), configMap("settings", value))
		ref, _ := bundle.ParseReference(e.Registry.Addr + "/apps/" + app + ":" + value)
		res, err := bundle.Push(context.Background(), c, rel, ref, bundle.PushOptions{PackOptions: bundle.PackOptions{Created: time.Unix(1764115200, 0)}, SignKey: key})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	unsigned, signed := push("v1", nil), push("v2", keys["new"])
	config := func(pinned string) string {
		return testenv.ProviderConfig(e) + fmt.Sprintf(`
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
  signature_policy {
    public_keys = {
      old = file(%[7]q)
      new = file(%[8]q)
    }
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
}
`, env, e.Registry.Addr, e.ArgoCD.ClusterServer, e.Cluster.Token, app, pinned, filepath.Join(dir, "old.pub"), filepath.Join(dir, "new.pub"))
	}
	argo, err := argocd.New(e.Cluster.RESTConfig(), e.ArgoCD.Namespace)
	if err != nil {
		t.Fatal(err)
	}
	noApplication := func() {
		if _, err := argo.GetApplication(context.Background(), app); !errors.Is(err, argocd.ErrNotFound) {
			t.Errorf("application %s after a refused sync: %v, want not found", app, err)
		}
	}
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testProviderFactories,
		Steps: []resource.TestStep{
			{Config: config(unsigned.PinnedReference), ExpectError: regexp.MustCompile(`(?s)Bundle signature not verified.*permanent failure.*not signed`)},
			{PreConfig: noApplication, Config: config(signed.PinnedReference), ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue("ferry_application.app", tfjsonpath.New("synced_revision"), knownvalue.StringExact(signed.Digest)),
				statecheck.ExpectKnownValue("ferry_environment.env", tfjsonpath.New("signature_policy").AtMapKey("public_keys").AtMapKey("new"), knownvalue.NotNull()),
			}},
			// The environment exists now: the change to an unsigned bundle fails the plan itself.
			{Config: config(unsigned.PinnedReference), PlanOnly: true, ExpectError: regexp.MustCompile(`(?s)Bundle signature not verified.*not signed`)},
		},
	})
}

package provider

import (
	"context"
	"fmt"
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

// TestAccRelocatedBundle: a signed bundle that pins an image is pushed to a registry of its own
// and copied with `ferry bundle copy`'s engine into the test environment's registry, as a
// private-cloud customer's registry receives it. Against the copy, the data source reads the same
// digest, verifies the signature and both attestations with the same key, and reads the relocation
// record (the image's relocated reference); ferry_application syncs Argo CD from the copy.
func TestAccRelocatedBundle(t *testing.T) {
	e := sharedEnv.Get(t)
	env, app := uniqueName(t, "env"), uniqueName(t, "app")
	src := testenv.StartRegistry(t, testenv.RegistryOptions{})
	src.PushImage(t, "shop/api", "1.0.0", "api")
	dir, keys := signingKeys(t, "release")
	c, err := bundle.NewClient(bundle.ClientOptions{PlainHTTP: true, Credentials: bundle.StaticCredentials(nil, nil)})
	if err != nil {
		t.Fatal(err)
	}
	ref := func(s string) bundle.Reference {
		r, err := bundle.ParseReference(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	rel := t.TempDir()
	writeFile(t, filepath.Join(rel, "ferry.yaml"), "apiVersion: ferry.dev/v1\nkind: Bundle\nname: shop\nversion: 1.0.0\nimages:\n  api: "+src.Addr+"/shop/api:1.0.0\nmanifests: m\n")
	writeFile(t, filepath.Join(rel, "m", "cm.yaml"), configMap("settings", "relocated"))
	ctx := context.Background()
	pushed, err := bundle.Push(ctx, c, rel, ref(src.Addr+"/shop/bundle:1.0.0"), bundle.PushOptions{PackOptions: bundle.PackOptions{Created: time.Unix(1764115200, 0)}, SignKey: keys["release"]})
	if err != nil {
		t.Fatal(err)
	}
	dst := e.Registry.Addr + "/apps/" + app
	copied, err := bundle.Copy(ctx, c, ref(src.Addr+"/shop/bundle:1.0.0"), ref(dst), bundle.CopyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Stop(); err != nil { // the customer's side reaches only its own registry
		t.Fatal(err)
	}
	config := fmt.Sprintf(`
data "ferry_bundle" "b" {
  reference       = %q
  read_relocation = true
  verify {
    public_keys           = { release = file(%q) }
    required_attestations = ["sbom", "provenance"]
  }
}
`, dst+":1.0.0", filepath.Join(dir, "release.pub")) + appConfig(e, env, app, "${data.ferry_bundle.b.pinned_reference}", "")
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testProviderFactories,
		Steps: []resource.TestStep{{Config: config, ConfigStateChecks: []statecheck.StateCheck{
			statecheck.ExpectKnownValue("data.ferry_bundle.b", tfjsonpath.New("digest"), knownvalue.StringExact(pushed.Digest)),
			statecheck.ExpectKnownValue("data.ferry_bundle.b", tfjsonpath.New("verified_by"), knownvalue.ListExact([]knownvalue.Check{knownvalue.StringExact("release")})),
			statecheck.ExpectKnownValue("data.ferry_bundle.b", tfjsonpath.New("relocated_images"), knownvalue.MapExact(map[string]knownvalue.Check{
				"api": knownvalue.StringExact(copied.Images[0].To),
			})),
			statecheck.ExpectKnownValue("ferry_application.app", tfjsonpath.New("synced_revision"), knownvalue.StringExact(pushed.Digest)),
		}}},
	})
}

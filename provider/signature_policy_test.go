package provider

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/ferry-dev/terraform-provider-ferry/internal/argocd"
)

// TestAccEnvironmentSignaturePolicy: an environment with a signature_policy refuses an
// application whose bundle is not signed by one of its keys — the apply fails with class
// permanent and no Application is written — and deploys one signed by the new of two trusted
// keys (rotation); once the environment exists, a change to an unsigned bundle, to one signed by
// an untrusted key or to one carrying a signature of another digest fails the plan, and with
// required_attestations so does a bundle signed without its SBOM and provenance.
func TestAccEnvironmentSignaturePolicy(t *testing.T) {
	e := sharedEnv.Get(t)
	env, app := uniqueName(t, "env"), uniqueName(t, "app")
	dir, keys := signingKeys(t, "old", "new", "other")
	repo := e.Registry.Addr + "/apps/" + app
	unsigned := pushSigned(t, repo+":v1", "v1", nil)
	signed := pushSigned(t, repo+":v2", "v2", keys["new"])
	wrongKey := pushSigned(t, repo+":v3", "v3", keys["other"])
	copied := pushSigned(t, repo+":v4", "v4", nil)
	copySignature(t, repo, signed, copied)
	signOnly := signAfterPush(t, repo+":v5", "v5", keys["new"])
	require := ""
	config := func(pinned string) string {
		policy := fmt.Sprintf("  signature_policy {\n    public_keys = {\n      old = file(%q)\n      new = file(%q)\n    }\n    %s\n  }\n  cluster {",
			filepath.Join(dir, "old.pub"), filepath.Join(dir, "new.pub"), require)
		return strings.Replace(appConfig(e, env, app, pinned, ""), "  cluster {", policy, 1)
	}
	requireAttestations := func(pinned string) string {
		require = `required_attestations = ["sbom", "provenance"]`
		defer func() { require = "" }()
		return config(pinned)
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
			// The environment exists now: the change to an unsigned bundle fails the plan itself, and
			// so do a bundle signed by an untrusted key and one with a signature copied from another digest.
			{Config: config(unsigned.PinnedReference), PlanOnly: true, ExpectError: regexp.MustCompile(`(?s)Bundle signature not verified.*not signed`)},
			{Config: config(wrongKey.PinnedReference), PlanOnly: true, ExpectError: regexp.MustCompile(`(?s)Bundle signature not verified.*permanent.*no\s+trusted\s+key`)},
			{Config: config(copied.PinnedReference), PlanOnly: true, ExpectError: regexp.MustCompile(`(?s)Bundle signature not verified.*permanent.*another\s+digest`)},
			// Required attestations: the bundle pushed with a signing key has them; one signed afterwards does not.
			{Config: requireAttestations(signed.PinnedReference), ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue("ferry_environment.env", tfjsonpath.New("signature_policy").AtMapKey("required_attestations"),
					knownvalue.ListExact([]knownvalue.Check{knownvalue.StringExact("sbom"), knownvalue.StringExact("provenance")})),
				statecheck.ExpectKnownValue("ferry_application.app", tfjsonpath.New("synced_revision"), knownvalue.StringExact(signed.Digest)),
			}},
			{Config: requireAttestations(signOnly.PinnedReference), PlanOnly: true, ExpectError: regexp.MustCompile(`(?s)Bundle signature not verified.*permanent.*required\s+attestation\s+missing`)},
		},
	})
}

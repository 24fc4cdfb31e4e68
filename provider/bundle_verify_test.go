package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/ferry-dev/terraform-provider-ferry/bundle"
	"github.com/ferry-dev/terraform-provider-ferry/internal/testenv"
)

// TestAccBundleDataSourceVerify: the data source's verify block accepts a bundle signed by one of
// its keys (two keys trusted: rotation) and names the key; it fails the plan of an unsigned
// bundle, of a bundle signed by an untrusted key, of a tag moved to an unsigned digest and of a
// signature copied from another digest, each with its own summary; with required_attestations it
// accepts a bundle pushed with a signing key (SBOM and provenance attached) and refuses one
// signed afterwards, without them.
func TestAccBundleDataSourceVerify(t *testing.T) {
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	dir, keys := signingKeys(t, "old", "new", "other")
	push := func(tag, value string, key *bundle.SigningKey) {
		pushSigned(t, reg.Addr+"/shop/bundle:"+tag, value, key)
	}
	push("signed", "1", keys["new"])
	push("unsigned", "2", nil)
	push("moved", "3", keys["new"])
	push("moved", "4", nil)
	signOnly := signAfterPush(t, reg.Addr+"/shop/bundle:signonly", "5", keys["new"])
	copied := pushSigned(t, reg.Addr+"/shop/bundle:copied", "6", nil)
	copySignature(t, reg.Addr+"/shop/bundle", signOnly, copied)
	require := ""
	config := func(tag string, trusted ...string) string {
		pubs := ""
		for _, name := range trusted {
			pubs += fmt.Sprintf("      %s = file(%q)\n", name, filepath.Join(dir, name+".pub"))
		}
		return providerConfig(reg.Addr, "") + fmt.Sprintf(`
data "ferry_bundle" "b" {
  reference = %q
  verify {
    public_keys = {
%s    }
    %s
  }
}
`, reg.Addr+"/shop/bundle:"+tag, pubs, require)
	}
	requireAttestations := func(tag string) string {
		require = `required_attestations = ["sbom", "provenance"]`
		defer func() { require = "" }()
		return config(tag, "new")
	}
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testProviderFactories,
		Steps: []resource.TestStep{
			{Config: config("signed", "old", "new"), ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue("data.ferry_bundle.b", tfjsonpath.New("verified_by"), knownvalue.ListExact([]knownvalue.Check{knownvalue.StringExact("new")})),
			}},
			{Config: config("unsigned", "old", "new"), ExpectError: regexp.MustCompile(`Bundle Not Signed`)},
			{Config: config("signed", "other"), ExpectError: regexp.MustCompile(`Bundle Signed by No Trusted Key`)},
			{Config: config("moved", "new"), ExpectError: regexp.MustCompile(`Bundle Not Signed`)},
			{Config: config("copied", "new"), ExpectError: regexp.MustCompile(`Bundle Signature for Another Digest`)},
			// A signed push attaches the SBOM and the provenance; a bundle signed afterwards has neither.
			{Config: requireAttestations("signed"), ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue("data.ferry_bundle.b", tfjsonpath.New("verified_by"), knownvalue.ListExact([]knownvalue.Check{knownvalue.StringExact("new")})),
			}},
			{Config: requireAttestations("signonly"), ExpectError: regexp.MustCompile(`(?s)Bundle Attestation Missing.*cyclonedx.org/bom.*slsa.dev/provenance/v1`)},
		},
	})
}

// signingKeys returns signing keys by name, their public keys written to dir as NAME.pub.
func signingKeys(t *testing.T, names ...string) (dir string, keys map[string]*bundle.SigningKey) {
	t.Helper()
	dir, keys = t.TempDir(), map[string]*bundle.SigningKey{}
	for _, name := range names {
		priv, pub, err := bundle.GenerateKeyPair([]byte("pw"))
		if err != nil {
			t.Fatal(err)
		}
		if keys[name], err = bundle.LoadSigningKey(priv, []byte("pw")); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, name+".pub"), string(pub))
	}
	return dir, keys
}

// pushSigned pushes a release of one ConfigMap with value to ref (plain HTTP), signed with key
// unless it is nil.
func pushSigned(t *testing.T, ref, value string, key *bundle.SigningKey) *bundle.PushResult {
	t.Helper()
	c, err := bundle.NewClient(bundle.ClientOptions{PlainHTTP: true, Credentials: bundle.StaticCredentials(nil, nil)})
	if err != nil {
		t.Fatal(err)
	}
	rel := t.TempDir()
	writeFile(t, filepath.Join(rel, "ferry.yaml"), "apiVersion: ferry.dev/v1\nkind: Bundle\nname: shop\nversion: 1.0.0\nmanifests: m\n")
	writeFile(t, filepath.Join(rel, "m", "cm.yaml"), configMap("settings", value))
	r, err := bundle.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	res, err := bundle.Push(context.Background(), c, rel, r, bundle.PushOptions{PackOptions: bundle.PackOptions{Created: time.Unix(1764115200, 0)}, SignKey: key})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// signAfterPush pushes an unsigned release to ref and signs it with `ferry bundle sign`'s engine:
// a signature, no attestations.
func signAfterPush(t *testing.T, ref, value string, key *bundle.SigningKey) *bundle.PushResult {
	t.Helper()
	res := pushSigned(t, ref, value, nil)
	c, err := bundle.NewClient(bundle.ClientOptions{PlainHTTP: true, Credentials: bundle.StaticCredentials(nil, nil)})
	if err != nil {
		t.Fatal(err)
	}
	r, err := bundle.ParseReference(res.PinnedReference)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := bundle.Sign(context.Background(), c, r, key)
	if err != nil {
		t.Fatal(err)
	}
	res.Signature = sig.Signature
	return res
}

// copySignature attaches the signature referrer of from (as it is: a signature of from's digest)
// to to, a bundle in the same repository: a signature for another digest.
func copySignature(t *testing.T, repoRef string, from, to *bundle.PushResult) {
	t.Helper()
	ctx := context.Background()
	repo, err := remote.NewRepository(repoRef)
	if err != nil {
		t.Fatal(err)
	}
	repo.PlainHTTP = true
	_, raw, err := oras.FetchBytes(ctx, repo, from.Signature, oras.DefaultFetchBytesOptions)
	if err != nil {
		t.Fatal(err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	dg, err := digest.Parse(to.Digest)
	if err != nil {
		t.Fatal(err)
	}
	m.Subject = &ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: dg, Size: to.Size}
	raw, _ = json.Marshal(m)
	if err := repo.Push(ctx, content.NewDescriptorFromBytes(ocispec.MediaTypeImageManifest, raw), bytes.NewReader(raw)); err != nil {
		t.Fatal(err)
	}
}

package bundle

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry"

	"github.com/ferry-dev/terraform-provider-ferry/internal/testenv"
)

// signingKeys returns a signing key and its trusted public key, named name, written as cosign
// writes them (the private key encrypted with password).
func signingKeys(t *testing.T, name, password string) (*SigningKey, TrustedKey) {
	t.Helper()
	priv, pub, err := GenerateKeyPair([]byte(password))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, name+".key"), priv, 0o600)
	os.WriteFile(filepath.Join(dir, name+".pub"), pub, 0o644)
	key, err := LoadSigningKey(priv, []byte(password))
	if err != nil {
		t.Fatal(err)
	}
	trusted, err := LoadTrustedKeys(filepath.Join(dir, name+".pub"))
	if err != nil {
		t.Fatal(err)
	}
	return key, trusted[0]
}

// simpleRelease writes a release of one ConfigMap whose value is value.
func simpleRelease(t *testing.T, value string) string {
	t.Helper()
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"ferry.yaml": "apiVersion: ferry.dev/v1\nkind: Bundle\nname: shop\nversion: 1.0.0\nmanifests: m\n",
		"m/cm.yaml":  "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  value: " + value + "\n",
	})
	return dir
}

// TestSignVerify signs bundles at push with cosign-format keys in the real registry and verifies
// them: a signed bundle verifies with its key, also among several (rotation); an unsigned bundle,
// a tag moved to an unsigned digest, a bundle signed by an untrusted key, a signature copied from
// another digest and a tampered signature each fail with their own error; a digest verified
// once is verified again without a registry request; a wrong password is refused.
func TestSignVerify(t *testing.T) {
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	c := clientFor(t, nil, ClientOptions{})
	ctx := context.Background()
	keyA, trustA := signingKeys(t, "a", "pass-a")
	keyB, trustB := signingKeys(t, "b", "pass-b")
	repo := reg.Addr + "/shop/bundle"
	push := func(value, tag string, key *SigningKey) *PushResult {
		t.Helper()
		res, err := Push(ctx, c, simpleRelease(t, value), mustRef(t, repo+":"+tag), PushOptions{PackOptions: PackOptions{Created: testCreated}, SignKey: key})
		if err != nil {
			t.Fatalf("Push(%s) error = %v", value, err)
		}
		return res
	}
	verifyErr := func(ref string, keys []TrustedKey, want error) {
		t.Helper()
		_, err := Verify(ctx, c, mustRef(t, ref), keys)
		var ve *VerifyError
		if !errors.Is(err, want) || !errors.As(err, &ve) {
			t.Errorf("Verify(%s) error = %v, want %v", ref, err, want)
		}
	}

	signed := push("a", "signed", keyA)
	if signed.Signature == "" {
		t.Fatal("Push with a signing key reported no signature")
	}
	// The signature is an OCI 1.1 referrer of the manifest, as oras and cosign look for it.
	rep := reg.Repository(t, "shop/bundle")
	subject := manifestDescriptor(t, signed)
	refs, err := registry.Referrers(ctx, rep, subject, MediaTypeSigstoreBundle)
	if err != nil || len(refs) != 3 || !slices.ContainsFunc(refs, func(d ocispec.Descriptor) bool { return d.Digest.String() == signed.Signature }) {
		t.Fatalf("referrers of %s = %v, %v, want the signature %s and two attestations", signed.Digest, refs, err, signed.Signature)
	}
	// Distribution v3.0.0 has no referrers API: the referrers tag schema's index lists it.
	if _, err := rep.Resolve(ctx, "sha256-"+subject.Digest.Encoded()); err != nil {
		t.Errorf("the referrers tag sha256-%s: %v", subject.Digest.Encoded(), err)
	}
	for _, keys := range [][]TrustedKey{{trustA}, {trustB, trustA}} {
		res, err := Verify(ctx, c, mustRef(t, signed.PinnedReference), keys)
		if err != nil || len(res.Signatures) != 1 || res.Signatures[0].Key != trustA.Name || res.Signatures[0].PredicateType != PredicateCosignSign {
			t.Errorf("Verify(signed, %d keys) = %+v, %v, want one signature by %s", len(keys), res, err, trustA.Name)
		}
	}
	// Verified before in this process: no request.
	before := reg.Requests()
	if _, err := Verify(ctx, c, mustRef(t, signed.PinnedReference), []TrustedKey{trustA}); err != nil {
		t.Fatal(err)
	}
	if n := reg.Requests() - before; n != 0 {
		t.Errorf("verifying a verified digest again made %d registry requests, want 0", n)
	}

	unsigned := push("b", "unsigned", nil)
	verifyErr(unsigned.PinnedReference, []TrustedKey{trustA}, ErrUnsigned)
	verifyErr(signed.PinnedReference, []TrustedKey{trustB}, ErrUntrustedKey)

	// The tag of a signed bundle moved to an unsigned digest: the tag's digest now is verified.
	push("c", "moved", keyA)
	push("d", "moved", nil)
	verifyErr(repo+":moved", []TrustedKey{trustA}, ErrUnsigned)

	// A signature of the signed bundle copied onto the unsigned one, and a tampered signature.
	raw := fetchLayer(t, reg, rep, signed.Signature)
	attach(t, rep, unsigned, raw)
	verifyErr(unsigned.PinnedReference, []TrustedKey{trustA}, ErrSignatureDigest)
	other := push("e", "tampered", nil)
	var sb map[string]any
	if err := json.Unmarshal(signatureOf(t, ctx, keyA, other.Digest), &sb); err != nil {
		t.Fatal(err)
	}
	env := sb["dsseEnvelope"].(map[string]any)
	sig := env["signatures"].([]any)[0].(map[string]any)
	sig["sig"] = "MEUCIQDr" + sig["sig"].(string)[8:]
	tampered, _ := json.Marshal(sb)
	attach(t, rep, other, tampered)
	verifyErr(other.PinnedReference, []TrustedKey{trustA}, ErrBadSignature)

	// Rotation: a bundle signed with the new key verifies with both keys trusted.
	rotated := push("f", "rotated", keyB)
	if _, err := Verify(ctx, c, mustRef(t, rotated.PinnedReference), []TrustedKey{trustA, trustB}); err != nil {
		t.Errorf("Verify(signed with the new key, both keys) error = %v", err)
	}

	priv, _, _ := GenerateKeyPair([]byte("right"))
	if _, err := LoadSigningKey(priv, []byte("wrong")); !errors.Is(err, ErrSigningKey) {
		t.Errorf("LoadSigningKey(wrong password) error = %v, want ErrSigningKey", err)
	}
}

func mustDigest(t *testing.T, d string) digest.Digest {
	t.Helper()
	dg, err := digest.Parse(d)
	if err != nil {
		t.Fatal(err)
	}
	return dg
}

func signatureOf(t *testing.T, ctx context.Context, key *SigningKey, digest string) []byte {
	t.Helper()
	b, err := sigstoreSignature(ctx, key, digest, PredicateCosignSign, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fetchLayer returns the Sigstore bundle of the signature referrer with manifest digest d.
func fetchLayer(t *testing.T, reg *testenv.Registry, rep oras.ReadOnlyTarget, d string) []byte {
	t.Helper()
	m := fetchManifest(t, reg, "shop/bundle", d)
	b, err := content.FetchAll(context.Background(), rep, m.Layers[0])
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// attach pushes a Sigstore bundle as a signature referrer of the pushed bundle res, as
// attachSignature lays it out.
func attach(t *testing.T, rep oras.Target, res *PushResult, sigstoreBundle []byte) {
	t.Helper()
	ctx := context.Background()
	layer := content.NewDescriptorFromBytes(MediaTypeSigstoreBundle, sigstoreBundle)
	if err := pushIfMissing(ctx, rep, layer, sigstoreBundle); err != nil {
		t.Fatal(err)
	}
	subject := manifestDescriptor(t, res)
	if _, err := oras.PackManifest(ctx, rep, oras.PackManifestVersion1_1, MediaTypeSigstoreBundle, oras.PackManifestOptions{
		Subject: &subject, Layers: []ocispec.Descriptor{layer},
		ManifestAnnotations: map[string]string{annotationBundlePredicate: PredicateCosignSign},
	}); err != nil {
		t.Fatal(err)
	}
}

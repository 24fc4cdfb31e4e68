package bundle

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	sgbundle "github.com/sigstore/sigstore-go/pkg/bundle"

	"github.com/ferry-dev/terraform-provider-ferry/internal/testenv"
)

const testLockFile = `# This file is maintained automatically by "terraform init".
provider "registry.terraform.io/hashicorp/null" {
  version     = "3.2.4"
  constraints = "~> 3.2"
  hashes = [
    "h1:L5V05xwp/Gto1leRryuesxjMfgZwjb7oool4WS1UEFQ=",
    "zh:59f6b52ab4ff35739647f9509ee6d93d7c032985d9f8c6237d1f8a59471bbbe2",
  ]
}
`

// TestAttestations pushes a signed release with an image, a Terraform lock file, a plugin and a
// render step to the real registry: the SBOM and the provenance are attached as signed
// referrers with what the release holds; verification requires them by name; a bundle signed
// without them, or attested by an untrusted key, fails with ErrMissingAttestation; inspect's
// listing names all three referrers; more than 64 referrers fail without being read.
func TestAttestations(t *testing.T) {
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	c := clientFor(t, nil, ClientOptions{})
	ctx := context.Background()
	keyA, trustA := signingKeys(t, "a", "pass-a")
	keyB, _ := signingKeys(t, "b", "pass-b")
	t.Setenv("FERRY_BUILDER_ID", "https://ci.example.com/shop/release")
	t.Setenv("FERRY_INVOCATION_ID", "https://ci.example.com/shop/release/runs/42")

	files := releaseFiles()
	files["terraform/.terraform.lock.hcl"] = testLockFile
	files["ferry.yaml"] = strings.Replace(files["ferry.yaml"], "revision: abc123", "revision: 0123456789abcdef0123456789abcdef01234567", 1)
	dir := t.TempDir()
	writeTree(t, dir, files)
	res, err := Push(ctx, c, dir, mustRef(t, reg.Addr+"/shop/bundle:1.4.0"), PushOptions{PackOptions: PackOptions{Created: testCreated, Offline: true}, SignKey: keyA})
	if err != nil {
		t.Fatal(err)
	}
	if res.Signature == "" || len(res.Attestations) != 2 {
		t.Fatalf("signed push: signature %q, attestations %+v; want a signature and 2 attestations", res.Signature, res.Attestations)
	}
	rep := reg.Repository(t, "shop/bundle")
	predicate := func(referrer string) map[string]any {
		t.Helper()
		var b sgbundle.Bundle
		if err := b.UnmarshalJSON(fetchLayer(t, reg, rep, referrer)); err != nil {
			t.Fatal(err)
		}
		env, err := b.Envelope()
		if err != nil {
			t.Fatal(err)
		}
		stmt, err := env.Statement()
		if err != nil {
			t.Fatal(err)
		}
		if d := stmt.GetSubject()[0].GetDigest()["sha256"]; "sha256:"+d != res.Digest {
			t.Errorf("attestation subject %s, want %s", d, res.Digest)
		}
		raw, _ := stmt.GetPredicate().MarshalJSON()
		var m map[string]any
		json.Unmarshal(raw, &m)
		return m
	}
	byType := map[string]string{}
	for _, a := range res.Attestations {
		byType[a.PredicateType] = a.Referrer
	}

	// The SBOM: the image as an OCI purl, the locked provider, the plugin with its hash.
	sbom, _ := json.Marshal(predicate(byType[PredicateCycloneDX]))
	pluginSum := sha256.Sum256([]byte(files["plugins/migrate.sh*"]))
	for _, want := range []string{
		`"purl":"pkg:oci/api@sha256%3A` + strings.TrimPrefix(dAPI, "sha256:") + `?repository_url=registry.example.com/shop/api\u0026tag=1.4.0"`,
		`"name":"registry.terraform.io/hashicorp/null"`, `"version":"3.2.4"`, `"value":"zh:59f6b52ab4ff35739647f9509ee6d93d7c032985d9f8c6237d1f8a59471bbbe2"`,
		`"name":"plugins/migrate.sh"`, hex.EncodeToString(pluginSum[:]),
		`"bomFormat":"CycloneDX"`,
	} {
		if !strings.Contains(string(sbom), want) {
			t.Errorf("SBOM lacks %s:\n%s", want, sbom)
		}
	}
	// The provenance: builder and run from the environment, source at its commit, the render
	// tool by the digest of its executable.
	prov, _ := json.Marshal(predicate(byType[PredicateSLSAProvenance]))
	sh, _ := exec.LookPath("sh")
	shSum, _ := fileSHA256(func() (io.ReadCloser, error) { return os.Open(sh) })
	for _, want := range []string{
		`"buildType":"` + BuildTypePush + `"`, `"id":"https://ci.example.com/shop/release"`,
		`"invocationId":"https://ci.example.com/shop/release/runs/42"`,
		`"gitCommit":"0123456789abcdef0123456789abcdef01234567"`, `"uri":"https://git.example.com/shop"`,
		`"name":"render:info:tool"`, `"sha256":"` + shSum + `"`, `"uri":"file://` + sh + `"`,
	} {
		if !strings.Contains(string(prov), want) {
			t.Errorf("provenance lacks %s:\n%s", want, prov)
		}
	}

	// Verification with both attestations required, by name.
	require, err := AttestationTypes([]string{"sbom", "provenance"})
	if err != nil {
		t.Fatal(err)
	}
	v, err := Verify(ctx, c, mustRef(t, res.PinnedReference), []TrustedKey{trustA}, require...)
	if err != nil || len(v.Signatures) != 1 || len(v.Attestations) != 2 {
		t.Fatalf("Verify(require sbom, provenance) = %+v, %v", v, err)
	}
	before := reg.Requests()
	if _, err := Verify(ctx, c, mustRef(t, res.PinnedReference), []TrustedKey{trustA}, require...); err != nil {
		t.Fatal(err)
	}
	if n := reg.Requests() - before; n != 0 {
		t.Errorf("verifying a verified digest again made %d registry requests, want 0", n)
	}

	// inspect lists the three referrers.
	list, err := ListReferrers(ctx, c, mustRef(t, res.PinnedReference), res.Digest)
	var kinds []string
	for _, r := range list {
		kinds = append(kinds, r.Kind)
	}
	slices.Sort(kinds)
	if err != nil || strings.Join(kinds, ",") != "provenance,sbom,signature" {
		t.Errorf("ListReferrers = %v, %v, want provenance, sbom, signature", kinds, err)
	}

	// Signed after push, without attestations; then an SBOM attested by an untrusted key.
	plain, err := Push(ctx, c, simpleRelease(t, "plain"), mustRef(t, reg.Addr+"/shop/bundle:plain"), PushOptions{PackOptions: PackOptions{Created: testCreated}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Sign(ctx, c, mustRef(t, plain.PinnedReference), keyA); err != nil {
		t.Fatal(err)
	}
	_, err = Verify(ctx, c, mustRef(t, plain.PinnedReference), []TrustedKey{trustA}, PredicateCycloneDX)
	if !errors.Is(err, ErrMissingAttestation) {
		t.Errorf("Verify(signed without SBOM, require sbom) error = %v, want ErrMissingAttestation", err)
	}
	subject := manifestDescriptor(t, plain)
	if _, err := attachStatement(ctx, rep, subject, keyB, testCreated, PredicateCycloneDX, nil); err != nil {
		t.Fatal(err)
	}
	_, err = Verify(ctx, c, mustRef(t, plain.PinnedReference), []TrustedKey{trustA}, PredicateCycloneDX)
	if !errors.Is(err, ErrMissingAttestation) || !strings.Contains(err.Error(), "not trusted") {
		t.Errorf("Verify(SBOM by an untrusted key) error = %v, want ErrMissingAttestation naming the untrusted key", err)
	}
	if _, err := Verify(ctx, c, mustRef(t, plain.PinnedReference), []TrustedKey{trustA}); err != nil {
		t.Errorf("Verify(no attestation required) error = %v", err)
	}

	// A hostile number of referrers is refused without reading them.
	many, err := Push(ctx, c, simpleRelease(t, "many"), mustRef(t, reg.Addr+"/shop/bundle:many"), PushOptions{PackOptions: PackOptions{Created: testCreated}})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i <= maxSignatureReferrers; i++ {
		if _, err := attachStatement(ctx, rep, manifestDescriptor(t, many), keyB, testCreated.Add(time.Duration(i)*time.Second), PredicateCycloneDX, nil); err != nil {
			t.Fatal(err)
		}
	}
	before = reg.Requests()
	_, err = Verify(ctx, c, mustRef(t, many.PinnedReference), []TrustedKey{trustA})
	if !errors.Is(err, ErrBadSignature) || !strings.Contains(err.Error(), "more than the 64") {
		t.Errorf("Verify(65 referrers) error = %v, want ErrBadSignature for too many referrers", err)
	}
	if n := reg.Requests() - before; n > 3 {
		t.Errorf("Verify(65 referrers) made %d requests, want 3 at most: the resolve and the listing (the referrers API, then the tag schema)", n)
	}

	for _, bad := range []string{"sbom2", "ftp:x", ""} {
		if _, err := AttestationType(bad); err == nil {
			t.Errorf("AttestationType(%q) accepted", bad)
		}
	}
}

// manifestDescriptor is the descriptor of a pushed bundle's manifest.
func manifestDescriptor(t *testing.T, res *PushResult) ocispec.Descriptor {
	t.Helper()
	return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: mustDigest(t, res.Digest), Size: res.Size}
}

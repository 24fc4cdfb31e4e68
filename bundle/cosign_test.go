package bundle

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-dev/terraform-provider-ferry/internal/testenv"
)

// TestCosignInterop checks signatures against the real tools, offline (no transparency log): the
// cosign CLI verifies the signature and both attestations of a bundle ferry pushed with a
// signing key, and oras discovers them as OCI referrers; ferry verifies a signature and an
// attestation the cosign CLI wrote with a key cosign generated, and signs with that key.
func TestCosignInterop(t *testing.T) {
	testenv.SkipShort(t, "the cosign and oras CLIs and a registry")
	cosign, err := testenv.Tool("cosign")
	if err != nil {
		t.Fatal(err)
	}
	orasBin, err := testenv.Tool("oras")
	if err != nil {
		t.Fatal(err)
	}
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	c := clientFor(t, nil, ClientOptions{})
	ctx := context.Background()
	home := t.TempDir()
	cosignCLI := cliRunner(t, cosign, home, "COSIGN_PASSWORD=cosign-pass", "TUF_ROOT="+filepath.Join(home, "tuf"))
	orasCLI := cliRunner(t, orasBin, home)
	// ferry signs and attests; cosign verifies.
	keyDir := t.TempDir()
	priv, pub, err := GenerateKeyPair([]byte("ferry-pass"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(keyDir, "ferry.pub"), pub, 0o644)
	key, err := LoadSigningKey(priv, []byte("ferry-pass"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeTree(t, dir, releaseFiles())
	res, err := Push(ctx, c, dir, mustRef(t, reg.Addr+"/shop/bundle:1.4.0"), PushOptions{PackOptions: PackOptions{Created: testCreated, Offline: true}, SignKey: key})
	if err != nil {
		t.Fatal(err)
	}
	ferryPub := filepath.Join(keyDir, "ferry.pub")
	out := string(cosignCLI(keyDir, "verify", "--key", ferryPub, "--insecure-ignore-tlog=true", "--allow-http-registry", res.PinnedReference))
	if !strings.Contains(out, strings.TrimPrefix(res.Digest, "sha256:")) {
		t.Errorf("cosign verify printed no claim about %s:\n%s", res.Digest, out)
	}
	for _, typ := range []string{"cyclonedx", "slsaprovenance1"} {
		cosignCLI(keyDir, "verify-attestation", "--key", ferryPub, "--type", typ, "--insecure-ignore-tlog=true", "--allow-http-registry", res.PinnedReference)
	}

	// oras finds the three referrers through the referrers query (the tag schema here).
	var discovered struct {
		Referrers []struct {
			ArtifactType string `json:"artifactType"`
			Digest       string `json:"digest"`
		} `json:"referrers"`
	}
	if err := json.Unmarshal(orasCLI(keyDir, "discover", "--plain-http", "--format", "json", res.PinnedReference), &discovered); err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, r := range discovered.Referrers {
		if r.ArtifactType == MediaTypeSigstoreBundle {
			found[r.Digest] = true
		}
	}
	if !found[res.Signature] || len(found) != 3 {
		t.Errorf("oras discover found %+v, want the signature %s and two attestations", discovered.Referrers, res.Signature)
	}

	// cosign generates a key, signs and attests a ferry bundle; ferry verifies both and signs
	// with cosign's key.
	cosignDir := t.TempDir()
	cosignCLI(cosignDir, "generate-key-pair")
	plain, err := Push(ctx, c, simpleRelease(t, "cosign"), mustRef(t, reg.Addr+"/shop/bundle:cosign"), PushOptions{PackOptions: PackOptions{Created: testCreated}})
	if err != nil {
		t.Fatal(err)
	}
	noTlog := []string{"--key", "cosign.key", "--use-signing-config=false", "--tlog-upload=false", "--allow-http-registry", "--yes"}
	cosignCLI(cosignDir, append(append([]string{"sign"}, noTlog...), plain.PinnedReference)...)
	os.WriteFile(filepath.Join(cosignDir, "sbom.json"), []byte(`{"bomFormat":"CycloneDX","specVersion":"1.6","version":1}`), 0o644)
	cosignCLI(cosignDir, append(append([]string{"attest", "--type", "cyclonedx", "--predicate", "sbom.json"}, noTlog...), plain.PinnedReference)...)
	trusted, err := LoadTrustedKeys(filepath.Join(cosignDir, "cosign.pub"))
	if err != nil {
		t.Fatal(err)
	}
	// cosign's own check is not vacuous: ferry's bundle does not verify with cosign's key.
	wrongKey := exec.Command(cosign, "verify", "--key", filepath.Join(cosignDir, "cosign.pub"), "--insecure-ignore-tlog=true", "--allow-http-registry", res.PinnedReference)
	wrongKey.Env = append(os.Environ(), "HOME="+home, "DOCKER_CONFIG="+home)
	if out, err := wrongKey.CombinedOutput(); err == nil || !strings.Contains(string(out), "signatures do not match") {
		t.Errorf("cosign verify with another key: %v, want a signature mismatch:\n%s", err, out)
	}
	v, err := Verify(ctx, c, mustRef(t, plain.PinnedReference), trusted, PredicateCycloneDX)
	if err != nil || len(v.Signatures) != 1 || len(v.Attestations) != 1 {
		t.Fatalf("ferry verify of what cosign signed = %+v, %v", v, err)
	}
	cosignKey, err := os.ReadFile(filepath.Join(cosignDir, "cosign.key"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LoadSigningKey(cosignKey, []byte("cosign-pass")); err != nil {
		t.Errorf("LoadSigningKey(cosign's key) error = %v", err)
	}
}

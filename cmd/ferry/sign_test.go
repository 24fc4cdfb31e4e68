package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-dev/terraform-provider-ferry/bundle"
	"github.com/ferry-dev/terraform-provider-ferry/internal/argocd"
	"github.com/ferry-dev/terraform-provider-ferry/internal/testenv"
)

// TestCLISignVerify: `ferry bundle push --sign-key` signs before it tags, `ferry bundle sign`
// signs a pushed bundle, `ferry bundle verify` prints who signed and exits with the code of each
// failure; the key's password is read from standard input or the environment and never printed.
func TestCLISignVerify(t *testing.T) {
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	dir := t.TempDir()
	keyFile := func(name, password string) (string, string) {
		priv, pub, err := bundle.GenerateKeyPair([]byte(password))
		if err != nil {
			t.Fatal(err)
		}
		k, p := filepath.Join(dir, name+".key"), filepath.Join(dir, name+".pub")
		os.WriteFile(k, priv, 0o600)
		os.WriteFile(p, pub, 0o644)
		return k, p
	}
	keyA, pubA := keyFile("release-a", "secret-a")
	_, pubB := keyFile("release-b", "secret-b")
	env := []string{"DOCKER_CONFIG=" + t.TempDir(), "SOURCE_DATE_EPOCH=1764115200"}
	release := func(value string) string {
		return writeRelease(t, map[string]string{
			"ferry.yaml": "apiVersion: ferry.dev/v1\nkind: Bundle\nname: shop\nversion: 1.0.0\nmanifests: m\n",
			"m/cm.yaml":  "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  value: " + value + "\n",
		})
	}
	ref := reg.Addr + "/shop/bundle"

	r := ferry(t, env, "secret-a\n", "bundle", "push", release("1"), ref+":signed", "--plain-http", "--sign-key", keyA, "--sign-key-password-stdin", "--format", "json")
	var pushed struct{ Digest, PinnedReference, Signature string }
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &pushed) != nil || pushed.Signature == "" || !strings.Contains(r.stdout, bundle.PredicateCycloneDX) {
		t.Fatalf("push --sign-key: exit %d, %s %s", r.code, r.stdout, r.stderr)
	}
	r = ferry(t, env, "", "bundle", "verify", ref+":signed", "--plain-http", "--key", pubB, "--key", pubA)
	if r.code != 0 || !strings.Contains(r.stdout, "signed by "+pubA) || !strings.Contains(r.stdout, pushed.Digest) {
		t.Errorf("verify (two keys) exit %d: %s %s", r.code, r.stdout, r.stderr)
	}

	// A wrong password: refused before anything is pushed, no tag moved.
	r = ferry(t, append(env, "FERRY_KEY_PASSWORD=wrong"), "", "bundle", "push", release("2"), ref+":signed", "--plain-http", "--sign-key", keyA)
	if r.code != 2 || !strings.Contains(r.stderr, "password") {
		t.Errorf("push with a wrong password: exit %d, %s", r.code, r.stderr)
	}
	r = ferry(t, env, "", "bundle", "inspect", ref+":signed", "--plain-http", "--format", "go-template={{.digest}}")
	if r.stdout != pushed.Digest+"\n" {
		t.Errorf("after a refused push the tag points at %q, want %s", r.stdout, pushed.Digest)
	}

	// Unsigned, then signed by `ferry bundle sign` with the password in the environment.
	r = ferry(t, env, "", "bundle", "push", release("3"), ref+":later", "--plain-http")
	if r.code != 0 {
		t.Fatalf("push: %s", r.stderr)
	}
	for _, tc := range []struct {
		key  string
		code int
	}{{pubA, 10}} {
		if r = ferry(t, env, "", "bundle", "verify", ref+":later", "--plain-http", "--key", tc.key); r.code != tc.code {
			t.Errorf("verify unsigned: exit %d, want %d: %s", r.code, tc.code, r.stderr)
		}
	}
	r = ferry(t, append(env, "COSIGN_PASSWORD=secret-a"), "", "bundle", "sign", ref+":later", "--plain-http", "--key", keyA)
	if r.code != 0 || !strings.Contains(r.stdout, "Signature: sha256:") || strings.Contains(r.stdout+r.stderr, "secret-a") {
		t.Errorf("sign: exit %d, %s %s", r.code, r.stdout, r.stderr)
	}
	if r = ferry(t, env, "", "bundle", "verify", ref+":later", "--plain-http", "--key", pubA, "--format", "json"); r.code != 0 {
		t.Errorf("verify after sign: exit %d: %s", r.code, r.stderr)
	}
	if r = ferry(t, env, "", "bundle", "verify", ref+":later", "--plain-http", "--key", pubB); r.code != 12 {
		t.Errorf("verify with an untrusted key: exit %d, want 12: %s", r.code, r.stderr)
	}
	if r = ferry(t, env, "", "bundle", "verify", ref+":later", "--plain-http"); r.code != 2 {
		t.Errorf("verify without --key: exit %d, want 2", r.code)
	}

	// Attestations: the signed push attached an SBOM and a provenance; `bundle sign` alone did not.
	r = ferry(t, env, "", "bundle", "verify", ref+":signed", "--plain-http", "--key", pubA, "--require-attestation", "sbom", "--require-attestation", "provenance")
	if r.code != 0 || !strings.Contains(r.stdout, "attested "+bundle.PredicateCycloneDX) || !strings.Contains(r.stdout, "attested "+bundle.PredicateSLSAProvenance) {
		t.Errorf("verify --require-attestation (signed push): exit %d: %s %s", r.code, r.stdout, r.stderr)
	}
	if r = ferry(t, env, "", "bundle", "verify", ref+":later", "--plain-http", "--key", pubA, "--require-attestation", "sbom"); r.code != 14 || !strings.Contains(r.stderr, "required attestation missing") {
		t.Errorf("verify --require-attestation sbom (signed without): exit %d, want 14: %s", r.code, r.stderr)
	}
	if r = ferry(t, env, "", "bundle", "verify", ref+":later", "--plain-http", "--key", pubA, "--require-attestation", "spdx"); r.code != 2 || !strings.Contains(r.stderr, "--require-attestation") {
		t.Errorf("verify --require-attestation spdx: exit %d, want 2: %s", r.code, r.stderr)
	}
	r = ferry(t, env, "", "bundle", "inspect", ref+":signed", "--plain-http")
	for _, kind := range []string{"signature", "sbom", "provenance"} {
		if r.code != 0 || !strings.Contains(r.stdout, "  "+kind+" ") {
			t.Errorf("inspect lists no %s referrer: exit %d:\n%s", kind, r.code, r.stdout)
		}
	}
}

// TestCLIAppSyncSignaturePolicy: `ferry app sync` of an application whose environment has a
// signature policy refuses an unsigned bundle (exit 2, class permanent) without touching the
// Application, and syncs it once the bundle is signed by a trusted key.
func TestCLIAppSyncSignaturePolicy(t *testing.T) {
	e := sharedEnv.Get(t)
	ctx := context.Background()
	name := "signed-policy"
	appFixture(t, e, name, e.ArgoCD.ClusterServer, nil, map[string]string{"cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: signed}\n"})
	priv, pub, err := bundle.GenerateKeyPair([]byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := bundle.LoadSigningKey(priv, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := argocd.New(e.Cluster.RESTConfig(), e.ArgoCD.Namespace)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ApplyEnvironment(ctx, argocd.Environment{
		Name: name, Namespaces: []string{name}, SourceRepositories: []string{"oci://" + e.Registry.Addr + "/cli/*"}, ClusterResources: []string{"Namespace"},
		Cluster:     argocd.Cluster{Server: e.ArgoCD.ClusterServer, BearerToken: e.Cluster.Token, Insecure: true},
		TrustedKeys: map[string]string{"release": string(pub)},
	}); err != nil {
		t.Fatal(err)
	}
	before, err := c.GetApplication(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"KUBE_CONFIG_PATH=" + e.Cluster.Kubeconfig, "DOCKER_CONFIG=" + t.TempDir()}
	args := []string{"app", "sync", name, "--argocd-namespace", e.ArgoCD.Namespace, "--plain-http-registry", e.Registry.Addr, "--timeout", "3m"}
	r := ferry(t, env, "", args...)
	if r.code != 2 || !strings.Contains(r.stderr, "Bundle signature not verified") || !strings.Contains(r.stderr, "not signed") {
		t.Fatalf("app sync of an unsigned bundle: exit %d, want 2 naming the signature policy:\n%s", r.code, r.stderr)
	}
	after, err := c.GetApplication(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if after.GetGeneration() != before.GetGeneration() {
		t.Errorf("the refused sync changed the Application (generation %d -> %d)", before.GetGeneration(), after.GetGeneration())
	}
	if _, ok := after.Object["operation"]; ok {
		t.Error("the refused sync requested an operation")
	}

	bc, err := bundle.NewClient(bundle.ClientOptions{PlainHTTP: true, Credentials: bundle.StaticCredentials(nil, nil)})
	if err != nil {
		t.Fatal(err)
	}
	a := argocd.AppFromLive(before)
	ref, err := bundle.ParseReference(strings.TrimPrefix(a.RepoURL, "oci://") + "@" + a.Digest)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bundle.Sign(ctx, bc, ref, key); err != nil {
		t.Fatal(err)
	}
	if r = ferry(t, env, "", args...); r.code != 0 {
		t.Errorf("app sync of the signed bundle: exit %d\n%s", r.code, r.stderr)
	}
}

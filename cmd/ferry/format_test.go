package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ferry-dev/terraform-provider-ferry/internal/testenv"
)

// TestCLITemplateErrors: a --format template that names a key the result does not have fails
// (exit 2) instead of printing "<no value>", and after a push that already moved its tag the
// result is still printed, as JSON, so the digest is not lost.
func TestCLITemplateErrors(t *testing.T) {
	testenv.SkipShort(t, "a registry")
	reg, dir, env := configMapRelease(t)
	ref := reg.Addr + "/shop/bundle"

	r := ferry(t, env, "", "bundle", "push", dir, ref+":1.0.0", "--plain-http", "--no-tty", "--format", "go-template={{.Digest}}")
	var pushed struct{ Digest string }
	if err := json.Unmarshal([]byte(r.stdout), &pushed); r.code != 2 || err != nil || !strings.HasPrefix(pushed.Digest, "sha256:") ||
		!strings.Contains(r.stderr, `map has no entry for key "Digest"`) || !strings.Contains(r.stderr, "{{.digest}}") {
		t.Fatalf("push with a template naming a missing key = exit %d\nstdout %s\nstderr %s\nwant exit 2, the result as JSON, the missing key and a hint", r.code, r.stdout, r.stderr)
	}
	if desc, err := reg.Resolve(t, "shop/bundle", "1.0.0"); err != nil || desc.Digest.String() != pushed.Digest {
		t.Errorf("tag 1.0.0 = %v, %v; want the pushed digest %s", desc.Digest, err, pushed.Digest)
	}
	if r := ferry(t, env, "", "bundle", "inspect", ref+":1.0.0", "--plain-http", "--format", "go-template={{.name}} {{.nope}}"); r.code != 2 || strings.Contains(r.stdout, "<no value>") {
		t.Errorf("inspect with a missing key = exit %d %q, want exit 2 and no <no value>", r.code, r.stdout)
	}
	if r := ferry(t, env, "", "bundle", "inspect", ref+":1.0.0", "--plain-http", "--format", "go-template={{.name}}"); r.code != 0 || r.stdout != "shop\n" {
		t.Errorf("inspect {{.name}} = exit %d %q, want shop", r.code, r.stdout)
	}
}

// TestCLIOCIReferenceForms: the reference forms Argo CD, Flux and OpenTofu users paste
// (oci://host/repo:tag, oci://host/repo?digest=…) are read as references, with a note saying so;
// another scheme is refused with the reference to write instead.
func TestCLIOCIReferenceForms(t *testing.T) {
	testenv.SkipShort(t, "a registry")
	reg, dir, env := configMapRelease(t)
	ref := reg.Addr + "/shop/bundle"
	r := ferry(t, env, "", "bundle", "push", dir, "oci://"+ref+":1.0.0", "--plain-http", "--no-tty", "--format", "go-template={{.digest}}")
	digest := strings.TrimSpace(r.stdout)
	if r.code != 0 || !strings.HasPrefix(digest, "sha256:") || !strings.Contains(r.stderr, "note: reading oci://"+ref+":1.0.0 as "+ref+":1.0.0") {
		t.Fatalf("push to oci://%s:1.0.0 = exit %d %q %q", ref, r.code, r.stdout, r.stderr)
	}
	if r := ferry(t, env, "", "bundle", "inspect", "oci://"+ref+"?digest="+digest, "--plain-http", "--format", "go-template={{.digest}}"); r.code != 0 || strings.TrimSpace(r.stdout) != digest {
		t.Errorf("inspect oci://%s?digest=%s = exit %d %q %q", ref, digest, r.code, r.stdout, r.stderr)
	}
	if r := ferry(t, env, "", "bundle", "inspect", "https://"+ref+":1.0.0", "--plain-http"); r.code != 2 || !strings.Contains(r.stderr, "no https:// scheme: write it as "+ref+":1.0.0") {
		t.Errorf("inspect https://%s:1.0.0 = exit %d %q, want exit 2 and the reference to write", ref, r.code, r.stderr)
	}
}

// configMapRelease starts a registry and writes a release of one ConfigMap; it returns them with
// an environment of empty Docker and ferry caches.
func configMapRelease(t *testing.T) (*testenv.Registry, string, []string) {
	t.Helper()
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	dir := writeRelease(t, map[string]string{
		"ferry.yaml": "apiVersion: ferry.dev/v1\nkind: Bundle\nname: shop\nversion: 1.0.0\nmanifests: m\n",
		"m/cm.yaml":  "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n",
	})
	return reg, dir, []string{"DOCKER_CONFIG=" + t.TempDir(), "FERRY_CACHE_DIR=" + t.TempDir()}
}

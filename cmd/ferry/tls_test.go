package main

import (
	"encoding/pem"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-dev/terraform-provider-ferry/internal/testenv"
)

// TestCLITLSRegistry talks TLS with a certificate from a private CA: the real registry behind a
// TLS-terminating proxy (as registries often run behind a load balancer). Without --ca-file or
// --insecure the push fails naming both and moves nothing; with --ca-file push (including the
// image resolution), inspect and pull work; --insecure skips the verification.
func TestCLITLSRegistry(t *testing.T) {
	t.Parallel()
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	target, _ := url.Parse("http://" + reg.RawAddr)
	ts := httptest.NewUnstartedServer(&httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(target)
		pr.Out.Host = pr.In.Host // the registry builds upload URLs from the host and X-Forwarded-Proto
		pr.SetXForwarded()
	}})
	ts.StartTLS()
	t.Cleanup(ts.Close)
	host := strings.TrimPrefix(ts.URL, "https://")
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	reg.PushImage(t, "shop/api", "1.0", "api")
	dir := writeRelease(t, map[string]string{
		"ferry.yaml":    "apiVersion: ferry.dev/v1\nkind: Bundle\nname: shop\nversion: 1.0.0\nmanifests: m\nimages:\n  api: " + host + "/shop/api:1.0\n",
		"m/deploy.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\nspec:\n  template:\n    spec:\n      containers:\n      - image: " + host + "/shop/api:1.0\n",
	})
	env := []string{"DOCKER_CONFIG=" + t.TempDir(), "SOURCE_DATE_EPOCH=1764115200"}
	ref := host + "/shop/bundle:1.0.0"

	// A certificate that does not verify is permanent (exit 2): retrying cannot fix it.
	r := ferry(t, env, "", "bundle", "push", dir, ref)
	if r.code != 2 || !strings.Contains(r.stderr, "certificate not trusted") || !strings.Contains(r.stderr, "--ca-file") || !strings.Contains(r.stderr, "--insecure") {
		t.Errorf("push without the CA = exit %d\n%s, want exit 2 naming the certificate, --ca-file and --insecure", r.code, r.stderr)
	}
	if r := ferry(t, env, "", "bundle", "inspect", ref); r.code != 2 || !strings.Contains(r.stderr, "certificate not trusted") {
		t.Errorf("inspect without the CA = exit %d\n%s, want exit 2", r.code, r.stderr)
	}
	if tags := reg.ListTags(t, "shop/bundle"); len(tags) != 0 {
		t.Errorf("tags after the failed push = %v, want none", tags)
	}

	if r := ferry(t, env, "", "bundle", "push", dir, ref, "--ca-file", caFile); r.code != 0 {
		t.Fatalf("push --ca-file: exit %d\n%s", r.code, r.stderr)
	}
	if r := ferry(t, env, "", "bundle", "inspect", ref, "--insecure"); r.code != 0 || !strings.Contains(r.stdout, "shop") {
		t.Errorf("inspect --insecure: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	out := t.TempDir()
	if r := ferry(t, env, "", "bundle", "pull", ref, "-o", out, "--ca-file", caFile); r.code != 0 {
		t.Fatalf("pull --ca-file: exit %d\n%s", r.code, r.stderr)
	}
	if b, err := os.ReadFile(filepath.Join(out, "manifests", "deploy.yaml")); err != nil || !strings.Contains(string(b), host+"/shop/api@sha256:") {
		t.Errorf("pulled deploy.yaml = %q (%v), want the image pinned through the TLS registry", b, err)
	}
}

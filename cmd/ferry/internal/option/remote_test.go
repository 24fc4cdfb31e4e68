package option

import (
	"context"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/spf13/pflag"

	"github.com/ferry-dev/terraform-provider-ferry/bundle"
)

const testDigest = "sha256:2d3eeda4dad3c5c8968d17e65e80305d2401817f259e69edd7a359e51445ca0e"

// schemeServer is a registry stand-in that records the scheme of every request: it answers a HEAD
// of any manifest with testDigest, and 404 to everything else.
type schemeServer struct {
	*httptest.Server
	host    string
	mu      sync.Mutex
	schemes []string
}

func startSchemeServer(t *testing.T, tls bool) *schemeServer {
	t.Helper()
	s := &schemeServer{}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		s.mu.Lock()
		s.schemes = append(s.schemes, scheme)
		s.mu.Unlock()
		if r.Method == http.MethodHead && strings.Contains(r.URL.Path, "/manifests/") {
			w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
			w.Header().Set("Docker-Content-Digest", testDigest)
			w.Header().Set("Content-Length", "100")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}`))
	}))
	if tls {
		s.StartTLS()
	} else {
		s.Start()
	}
	t.Cleanup(s.Close)
	s.host = strings.TrimPrefix(strings.TrimPrefix(s.URL, "https://"), "http://")
	return s
}

func (s *schemeServer) seen() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.schemes...)
}

// only reports whether s is not empty and every element is v.
func only(s []string, v string) bool {
	for _, x := range s {
		if x != v {
			return false
		}
	}
	return len(s) > 0
}

func parseRemote(t *testing.T, args ...string) (*Remote, error) {
	t.Helper()
	var r Remote
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	r.ApplyFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return &r, r.Parse(nil)
}

// TestRemoteTLSScope: --plain-http and --insecure apply to the command's registry only. An image
// registry of ferry.yaml is still accessed over HTTPS with a verified certificate, unless named with
// --plain-http-registry or --insecure-registry.
func TestRemoteTLSScope(t *testing.T) {
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	target := startSchemeServer(t, false)
	images := startSchemeServer(t, true)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: images.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	image := map[string]string{"api": images.host + "/shop/api:1.0"}
	client := func(t *testing.T, args ...string) *bundle.Client {
		t.Helper()
		r, err := parseRemote(t, append(args, "--retries", "1")...)
		if err != nil {
			t.Fatalf("Parse(%v) error = %v", args, err)
		}
		c, err := r.Client(target.host)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	t.Run("plain-http", func(t *testing.T) {
		c := client(t, "--plain-http", "--ca-file", caFile)
		// The target: plain HTTP (the stand-in answers 404, so Inspect says not found).
		if _, err := bundle.Inspect(ctx, c, bundle.Reference{Registry: target.host, Repository: "shop/bundle", Tag: "1"}); !errors.Is(err, bundle.ErrNotFound) {
			t.Errorf("Inspect(target) error = %v, want ErrNotFound over plain HTTP", err)
		}
		if s := target.seen(); !only(s, "http") {
			t.Errorf("target schemes = %v, want only http", s)
		}
		// The image registry: HTTPS.
		locks, err := bundle.ResolveImages(ctx, c, image, false)
		if err != nil || len(locks) != 1 || locks[0].Digest != testDigest {
			t.Fatalf("ResolveImages() = %v, %v, want %s over HTTPS", locks, err, testDigest)
		}
		if s := images.seen(); !only(s, "https") {
			t.Errorf("image registry schemes = %v, want only https", s)
		}
	})
	t.Run("plain-http-registry", func(t *testing.T) {
		// Naming the image registry as plain HTTP is obeyed (and fails against a TLS server).
		c := client(t, "--plain-http", "--plain-http-registry", images.host)
		if _, err := bundle.ResolveImages(ctx, c, image, false); err == nil {
			t.Errorf("ResolveImages() over plain HTTP to a TLS server succeeded, want an error")
		}
	})
	t.Run("insecure", func(t *testing.T) {
		// --insecure is for the target only: the image registry's certificate is still verified.
		c := client(t, "--insecure")
		if _, err := bundle.ResolveImages(ctx, c, image, false); !errors.Is(err, bundle.ErrImageUntrusted) {
			t.Errorf("ResolveImages() with --insecure error = %v, want ErrImageUntrusted", err)
		}
		c = client(t, "--insecure-registry", images.host)
		if _, err := bundle.ResolveImages(ctx, c, image, false); err != nil {
			t.Errorf("ResolveImages() with --insecure-registry error = %v", err)
		}
	})
}

func TestRemoteParse(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--plain-http-registry", "https://ghcr.io"}, "--plain-http-registry"},
		{[]string{"--insecure-registry", "ghcr.io/org"}, "--insecure-registry"},
		{[]string{"--idle-timeout", "0s"}, "--idle-timeout"},
		{[]string{"--retries", "0"}, "--retries"},
	} {
		_, err := parseRemote(t, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) || ExitCode(err) != ExitPermanent {
			t.Errorf("Parse(%v) error = %v, want a usage error naming %s", tt.args, err, tt.want)
		}
	}
	if _, err := parseRemote(t, "--plain-http-registry", "127.0.0.1:5000", "--insecure-registry", "ghcr.io"); err != nil {
		t.Errorf("Parse(valid hosts) error = %v", err)
	}
}

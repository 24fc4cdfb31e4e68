package main

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-dev/terraform-provider-ferry/internal/testenv"
)

// TestCLIHints: a registry failure says what to do from its real cause, and a mistake that no
// retry can fix (HTTPS against a plain-HTTP registry, or the reverse) fails at once with exit 2. A
// TLS or plain-HTTP hint is given only when TLS is what failed.
func TestCLIHints(t *testing.T) {
	t.Parallel()
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	env := []string{"DOCKER_CONFIG=" + t.TempDir()}
	tlsHints := []string{"--plain-http", "--ca-file", "--insecure", "TLS"}
	noTLSHint := func(t *testing.T, r result) {
		t.Helper()
		hint := r.stderr[strings.Index(r.stderr, "\n")+1:] // the line after the error
		for _, h := range tlsHints {
			if strings.Contains(hint, h) {
				t.Errorf("hint %q names %s, though TLS is not what failed", hint, h)
			}
		}
	}

	t.Run("HTTPS to a plain-HTTP registry", func(t *testing.T) {
		t.Parallel()
		// The registry behind a proxy that counts connections: one per attempt.
		target, _ := url.Parse("http://" + reg.RawAddr)
		var conns atomic.Int32
		srv := httptest.NewUnstartedServer(&httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(target) }})
		srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				conns.Add(1)
			}
		}
		srv.Start()
		t.Cleanup(srv.Close)
		host := srv.Listener.Addr().String()
		start := time.Now()
		r := ferry(t, env, "", "bundle", "inspect", host+"/shop/b:1")
		elapsed := time.Since(start)
		if r.code != 2 || !strings.Contains(r.stderr, "answers plain HTTP") || !strings.Contains(r.stderr, "add --plain-http") ||
			strings.Contains(r.stderr, "attempts") || strings.Contains(r.stderr, "--insecure") {
			t.Errorf("inspect over HTTPS = exit %d\n%s\nwant exit 2, at once, with the --plain-http hint only", r.code, r.stderr)
		}
		if n := conns.Load(); n != 1 {
			t.Errorf("connections = %d, want 1 (no retry)", n)
		}
		if elapsed > 2*time.Second {
			t.Errorf("inspect took %v, want no retry", elapsed)
		}
	})

	t.Run("plain HTTP to a TLS registry", func(t *testing.T) {
		t.Parallel()
		host, _ := testenv.TLSFront(t, reg.Addr)
		before := reg.Requests()
		r := ferry(t, env, "", "bundle", "inspect", host+"/shop/b:1", "--plain-http")
		if r.code != 2 || !strings.Contains(r.stderr, "speaks HTTPS") || !strings.Contains(r.stderr, "drop --plain-http") || strings.Contains(r.stderr, "attempts") {
			t.Errorf("inspect --plain-http of a TLS registry = exit %d\n%s\nwant exit 2 with the drop --plain-http hint", r.code, r.stderr)
		}
		if n := reg.Requests() - before; n != 0 {
			t.Errorf("%d requests reached the registry, want none", n)
		}
	})

	for _, plain := range []bool{false, true} {
		args := []string{"--retries", "1"}
		name := "HTTPS"
		if plain {
			args, name = append(args, "--plain-http"), "plain HTTP"
		}
		t.Run("unresolvable host over "+name, func(t *testing.T) {
			t.Parallel()
			r := ferry(t, env, "", append([]string{"bundle", "inspect", "nosuchhost.invalid/shop/b:1"}, args...)...)
			if r.code != 3 || !strings.Contains(r.stderr, "Cannot resolve nosuchhost.invalid: check the name") {
				t.Errorf("inspect of an unresolvable host = exit %d\n%s\nwant exit 3 with the DNS hint", r.code, r.stderr)
			}
			noTLSHint(t, r)
			// A login is a registry operation like the others.
			r = ferry(t, env, "pw\n", append([]string{"login", "nosuchhost.invalid", "-u", "ci", "--password-stdin"}, args...)...)
			if r.code != 3 || !strings.Contains(r.stderr, "Cannot resolve nosuchhost.invalid: check the name") {
				t.Errorf("login to an unresolvable host = exit %d\n%s\nwant exit 3 with the DNS hint", r.code, r.stderr)
			}
			noTLSHint(t, r)
		})
		t.Run("refused port over "+name, func(t *testing.T) {
			t.Parallel()
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			closed := l.Addr().String()
			l.Close()
			r := ferry(t, env, "", append([]string{"bundle", "pull", closed + "/shop/b:1", "-o", t.TempDir()}, args...)...)
			if r.code != 3 || !strings.Contains(r.stderr, "Nothing listens at "+closed+": check the address and port") {
				t.Errorf("pull from a closed port = exit %d\n%s\nwant exit 3 with the refused hint", r.code, r.stderr)
			}
			noTLSHint(t, r)
		})
	}

	t.Run("unresolvable image registry", func(t *testing.T) {
		t.Parallel()
		dir := writeRelease(t, map[string]string{
			"ferry.yaml":    "apiVersion: ferry.dev/v1\nkind: Bundle\nname: shop\nversion: 1.0.0\nmanifests: m\nimages:\n  api: nosuchhost.invalid/shop/api:1.0\n",
			"m/deploy.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: api\n",
		})
		r := ferry(t, env, "", "bundle", "push", dir, "oci-layout:"+t.TempDir()+"/layout:1", "--retries", "1")
		if r.code != 3 || !strings.Contains(r.stderr, "Cannot resolve nosuchhost.invalid") || !strings.Contains(r.stderr, "--offline") {
			t.Errorf("push with an unresolvable image registry = exit %d\n%s\nwant exit 3 with the DNS hint naming --offline", r.code, r.stderr)
		}
		noTLSHint(t, r)
	})
}

// TestCLIHintsOutputs: a push to oci-layout:DIR refuses a DIR that holds other files and is not a
// layout, naming it, rather than turning it into one; a pull leaves an existing ferry.lock.json as
// it was (docs/bundle-format.md: nothing the pull did not create is changed).
func TestCLIHintsOutputs(t *testing.T) {
	t.Parallel()
	env := []string{"DOCKER_CONFIG=" + t.TempDir(), "SOURCE_DATE_EPOCH=1764115200"}
	dir := writeRelease(t, map[string]string{
		"ferry.yaml":    "apiVersion: ferry.dev/v1\nkind: Bundle\nname: shop\nversion: 1.0.0\nmanifests: m\n",
		"m/config.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: shop\n",
	})

	plain := writeRelease(t, map[string]string{"notes.txt": "mine"})
	r := ferry(t, env, "", "bundle", "push", dir, "oci-layout:"+plain+":1")
	if r.code != 2 || !strings.Contains(r.stderr, plain+" holds other files and no oci-layout file") {
		t.Errorf("push into an ordinary directory = exit %d\n%s\nwant exit 2 naming it", r.code, r.stderr)
	}
	if entries, _ := os.ReadDir(plain); len(entries) != 1 {
		t.Errorf("the directory holds %d entries after the refused push, want only notes.txt", len(entries))
	}
	file := filepath.Join(plain, "notes.txt")
	if r := ferry(t, env, "", "bundle", "push", dir, "oci-layout:"+file+":1"); r.code != 2 || !strings.Contains(r.stderr, "it is a file") {
		t.Errorf("push into a file = exit %d\n%s\nwant exit 2", r.code, r.stderr)
	}

	// A new directory, and an existing layout, are fine.
	layout := filepath.Join(t.TempDir(), "layout")
	for _, tag := range []string{"1", "2"} {
		if r := ferry(t, env, "", "bundle", "push", dir, "oci-layout:"+layout+":"+tag); r.code != 0 {
			t.Fatalf("push to layout tag %s: exit %d\n%s", tag, r.code, r.stderr)
		}
	}

	out := writeRelease(t, map[string]string{"ferry.lock.json": `{"mine":true}`})
	r = ferry(t, env, "", "bundle", "pull", "oci-layout:"+layout+":1", "-o", out)
	if r.code != 2 || !strings.Contains(r.stderr, "ferry.lock.json: output path exists") {
		t.Errorf("pull over an existing ferry.lock.json = exit %d\n%s\nwant exit 2", r.code, r.stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "ferry.lock.json")); string(b) != `{"mine":true}` {
		t.Errorf("ferry.lock.json = %q after the refused pull, want it untouched", b)
	}
	if _, err := os.Stat(filepath.Join(out, "manifests")); err == nil {
		t.Error("the refused pull extracted manifests")
	}
}

// TestCLILoginHints: a refused login says to check the credential (not to log in, which is what
// failed) and stores nothing, exit 2; logging out of a host that has no stored credential says so
// (exit 0, like docker) instead of claiming to have removed one.
func TestCLILoginHints(t *testing.T) {
	t.Parallel()
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{Auth: true})
	env := []string{"DOCKER_CONFIG=" + t.TempDir()}
	r := ferry(t, env, "wrong\n", "login", reg.Addr, "-u", reg.Username, "--password-stdin", "--plain-http")
	if r.code != 2 || !strings.Contains(r.stderr, "unauthorized") || !strings.Contains(r.stderr, "Check the username and the password or token for "+reg.Addr) {
		t.Errorf("login with a wrong password = exit %d\n%s\nwant exit 2 saying to check the credential", r.code, r.stderr)
	}
	r = ferry(t, env, "", "logout", "never.example.com")
	if r.code != 0 || !strings.Contains(r.stdout, "Not logged in to never.example.com: no credential was stored for it") || strings.Contains(r.stdout, "Removed") {
		t.Errorf("logout of a host never logged in = exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

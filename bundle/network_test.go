package bundle

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-dev/terraform-provider-ferry/internal/testenv"
)

// hookProxy is a reverse proxy in front of a test registry that lets a test answer chosen requests
// itself. Upload locations point back at the proxy, so every request of a push passes it.
type hookProxy struct {
	Addr   string
	target string
	quit   chan struct{}

	mu  sync.Mutex
	log []string // "METHOD PATH" of every request, in arrival order
}

// startHookProxy starts a proxy in front of target ("host:port"). hook sees each request first and
// returns true when it answered it; the others are forwarded.
func startHookProxy(t testing.TB, target string, hook func(p *hookProxy, w http.ResponseWriter, r *http.Request) bool) *hookProxy {
	t.Helper()
	p := &hookProxy{target: target, quit: make(chan struct{})}
	u := &url.URL{Scheme: "http", Host: target}
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(u)
		pr.Out.Host = pr.In.Host // the registry builds upload locations from the Host header
	}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.log = append(p.log, r.Method+" "+r.URL.Path)
		p.mu.Unlock()
		if hook == nil || !hook(p, w, r) {
			rp.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(p.quit) }) // runs first: releases stalled handlers
	p.Addr = strings.TrimPrefix(srv.URL, "http://")
	return p
}

// count returns how many requests had method and path.
func (p *hookProxy) count(method, path string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, l := range p.log {
		if l == method+" "+path {
			n++
		}
	}
	return n
}

// stall forwards r, sends the answer's status, headers and the first half of its body, then sends
// nothing more until the client gives up or the test ends.
func (p *hookProxy) stall(w http.ResponseWriter, r *http.Request) {
	out, err := http.NewRequestWithContext(r.Context(), r.Method, "http://"+p.target+r.URL.RequestURI(), nil)
	if err != nil {
		panic(err)
	}
	out.Header = r.Header.Clone()
	resp, err := http.DefaultClient.Do(out)
	if err != nil {
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(body[:len(body)/2])
	http.NewResponseController(w).Flush()
	select {
	case <-r.Context().Done():
	case <-p.quit:
	}
}

// stalledRelease pushes a small bundle straight to reg and returns the digests of its layers by role.
func stalledRelease(t *testing.T, reg *testenv.Registry, repo string) map[string]string {
	t.Helper()
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"ferry.yaml":   "apiVersion: ferry.dev/v1\nkind: Bundle\nname: a\nversion: 1.0.0\nmanifests: m\nterraform: tf\n",
		"m/cm.yaml":    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n",
		"tf/main.tf":   "output \"x\" { value = \"" + strings.Repeat("x", 4096) + "\" }\n",
		"tf/extra.txt": strings.Repeat("ferry ", 2048),
	})
	res, err := Push(context.Background(), clientFor(t, nil, ClientOptions{}), dir, mustRef(t, reg.Addr+"/"+repo+":1"), PushOptions{PackOptions: PackOptions{Created: testCreated}})
	if err != nil {
		t.Fatalf("Push() error = %v", err)
	}
	layers := map[string]string{}
	for _, l := range res.Layers {
		layers[l.Role] = l.Digest
	}
	return layers
}

// TestPullStalled serves half of a blob (the zip or the tar+gzip layer) or of the manifest and then
// nothing: Pull fails after the idle timeout of each attempt, as a transient failure (ErrUnreachable)
// that names the attempts, and leaves nothing in the output directory.
func TestPullStalled(t *testing.T) {
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	const idle, attempts = 300 * time.Millisecond, 2
	for _, tt := range []struct {
		name, role string // role: the layer stalled; "" for the manifest
	}{
		{"zip", RoleTerraform},
		{"targz", RoleManifests},
		{"manifest", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			layers := stalledRelease(t, reg, "stall/"+tt.name)
			stalled := "/v2/stall/" + tt.name + "/manifests/1"
			if tt.role != "" {
				stalled = "/v2/stall/" + tt.name + "/blobs/" + layers[tt.role]
			}
			proxy := startHookProxy(t, reg.RawAddr, func(p *hookProxy, w http.ResponseWriter, r *http.Request) bool {
				if r.Method == http.MethodGet && r.URL.Path == stalled {
					p.stall(w, r)
					return true
				}
				return false
			})
			c := clientFor(t, nil, ClientOptions{IdleTimeout: idle, MaxAttempts: attempts})
			out := t.TempDir()
			start := time.Now()
			_, err := Pull(context.Background(), c, mustRef(t, proxy.Addr+"/stall/"+tt.name+":1"), out, PullOptions{})
			elapsed := time.Since(start)
			if !errors.Is(err, ErrUnreachable) {
				t.Fatalf("Pull() error = %v, want ErrUnreachable", err)
			}
			t.Logf("Pull() error after %v = %v", elapsed, err)
			for _, want := range []string{"idle timeout", "after 2 attempts"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Pull() error = %v, want it to contain %q", err, want)
				}
			}
			if n := proxy.count(http.MethodGet, stalled); n != attempts {
				t.Errorf("GET %s sent %d times, want %d (one retry layer)", stalled, n, attempts)
			}
			// Each attempt ends one idle timeout after the last byte; the rest is loopback traffic.
			if limit := attempts*idle + 3*time.Second; elapsed > limit {
				t.Errorf("Pull() took %v, want at most %v", elapsed, limit)
			}
			if entries, err := os.ReadDir(out); err != nil || len(entries) != 0 {
				t.Errorf("output directory after the failed pull = %v (%v), want empty", entries, err)
			}
		})
	}
}

// TestRetryOneLayer answers every request for a tag with 503: the registry sees exactly MaxAttempts
// requests (no retry under ferry's own), and the error names them.
func TestRetryOneLayer(t *testing.T) {
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	const path = "/v2/retry/a/manifests/1"
	proxy := startHookProxy(t, reg.RawAddr, func(_ *hookProxy, w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != path {
			return false
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, `{"errors":[{"code":"UNAVAILABLE","message":"test: unavailable"}]}`)
		return true
	})
	c := clientFor(t, nil, ClientOptions{MaxAttempts: 3})
	_, err := Inspect(context.Background(), c, mustRef(t, proxy.Addr+"/retry/a:1"))
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "after 3 attempts") {
		t.Errorf("Inspect() error = %v, want ErrUnreachable after 3 attempts", err)
	}
	if n := proxy.count(http.MethodGet, path); n != 3 {
		t.Errorf("registry saw %d requests, want 3", n)
	}
}

// TestUploadStalled sends a large body to a server that never reads it: the upload fails with a
// StallError about one idle timeout after the connection stopped taking bytes.
func TestUploadStalled(t *testing.T) {
	quit := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select { // neither read the body nor answer
		case <-r.Context().Done():
		case <-quit:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(quit) })
	const idle = 300 * time.Millisecond
	c := clientFor(t, nil, ClientOptions{IdleTimeout: idle})
	req, err := http.NewRequest(http.MethodPut, srv.URL+"/v2/x/blobs/uploads/1", io.LimitReader(zeros{}, 1<<30))
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = 1 << 30
	start := time.Now()
	resp, err := c.http.Do(req)
	if err == nil {
		resp.Body.Close()
	}
	var stall *StallError
	if !errors.As(err, &stall) || !isTransient(context.Background(), err) {
		t.Fatalf("upload error = %v, want a transient StallError", err)
	}
	if elapsed := time.Since(start); elapsed > 10*time.Second {
		t.Errorf("upload took %v to fail, want about the idle timeout once the buffers are full", elapsed)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-dev/terraform-provider-ferry/internal/testenv"
)

// startFerry starts the ferry binary and returns a function that waits for its exit.
func startFerry(t *testing.T, env []string, args ...string) (*exec.Cmd, func() result) {
	t.Helper()
	cmd := exec.Command(ferryBin, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-exited })
	return cmd, func() result {
		t.Helper()
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-exited
			t.Fatalf("ferry %s did not exit within 30 s of the signal\n%s", strings.Join(args, " "), stderr.String())
		}
		return result{stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()}
	}
}

func waitFor(t *testing.T, what string, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(60 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// TestCLIInterrupt: Ctrl-C (SIGINT) exits 130 and SIGTERM 143, with a short message rather than what
// the cancellation did to the request in flight ("registry unreachable … check the network").
func TestCLIInterrupt(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		sig  syscall.Signal
		code int
		msg  string
	}{{syscall.SIGINT, 130, "Error: interrupted by SIGINT (Ctrl-C)\n"}, {syscall.SIGTERM, 143, "Error: interrupted by SIGTERM\n"}} {
		// A registry that accepts the connection and never answers.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		accepted := make(chan struct{})
		go func() {
			if c, err := l.Accept(); err == nil {
				t.Cleanup(func() { c.Close() })
				close(accepted)
			}
		}()
		cmd, wait := startFerry(t, nil, "bundle", "inspect", l.Addr().String()+"/shop/bundle:1", "--plain-http")
		waitFor(t, "ferry bundle inspect to connect", accepted)
		cmd.Process.Signal(tt.sig)
		r := wait()
		if r.code != tt.code || r.stderr != tt.msg || r.stdout != "" {
			t.Errorf("ferry bundle inspect, then %v = exit %d, stdout %q, stderr %q; want exit %d and %q", tt.sig, r.code, r.stdout, r.stderr, tt.code, tt.msg)
		}
	}
}

// TestCLIInterruptPullLeavesNothing: Ctrl-C while `ferry bundle pull -o DIR` downloads a layer exits
// 130 and leaves no staging directory: DIR is removed when the pull created it, and left with only
// the user's files when it existed.
func TestCLIInterruptPullLeavesNothing(t *testing.T) {
	t.Parallel()
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	dir := writeRelease(t, map[string]string{"ferry.yaml": "apiVersion: ferry.dev/v1\nkind: Bundle\nname: a\nversion: 1\nmanifests: m\n", "m/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"})
	r := ferry(t, []string{"DOCKER_CONFIG=" + t.TempDir()}, "", "bundle", "push", dir, reg.Addr+"/shop/bundle:1", "--plain-http", "--format", "json")
	var pushed struct {
		Digest string
		Layers []struct{ Digest string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &pushed); err != nil || len(pushed.Layers) != 1 {
		t.Fatalf("push: exit %d, %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	// The registry, except that the layer download hangs until the client hangs up.
	target, _ := url.Parse("http://" + reg.Addr)
	rp := httputil.NewSingleHostReverseProxy(target)
	var mu sync.Mutex
	var hanging chan struct{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if strings.HasSuffix(req.URL.Path, "/blobs/"+pushed.Layers[0].Digest) {
			mu.Lock()
			if hanging != nil {
				close(hanging)
				hanging = nil
			}
			mu.Unlock()
			<-req.Context().Done()
			return
		}
		rp.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	ref := strings.TrimPrefix(srv.URL, "http://") + "/shop/bundle@" + pushed.Digest

	base := t.TempDir()
	existing := filepath.Join(base, "existing")
	os.Mkdir(existing, 0o755)
	os.WriteFile(filepath.Join(existing, "keep.txt"), []byte("keep"), 0o644)
	for _, tt := range []struct {
		out  string
		want []string // what DIR holds afterwards; nil: DIR is gone
	}{{filepath.Join(base, "new"), nil}, {existing, []string{"keep.txt"}}} {
		mu.Lock()
		hung := make(chan struct{})
		hanging = hung
		mu.Unlock()
		cmd, wait := startFerry(t, []string{"DOCKER_CONFIG=" + t.TempDir()}, "bundle", "pull", ref, "-o", tt.out, "--plain-http")
		waitFor(t, "the layer download", hung)
		cmd.Process.Signal(os.Interrupt)
		r := wait()
		if r.code != 130 || r.stderr != "Error: interrupted by SIGINT (Ctrl-C)\n" {
			t.Errorf("pull -o %s, then SIGINT = exit %d, stderr %q; want exit 130 and the interruption", tt.out, r.code, r.stderr)
		}
		var names []string
		entries, err := os.ReadDir(tt.out)
		for _, e := range entries {
			names = append(names, e.Name())
		}
		if tt.want == nil && !os.IsNotExist(err) || tt.want != nil && strings.Join(names, ",") != strings.Join(tt.want, ",") {
			t.Errorf("after the interrupted pull, %s holds %v (%v), want %v", tt.out, names, err, tt.want)
		}
	}
	if entries, _ := os.ReadDir(base); len(entries) != 1 {
		t.Errorf("after the interrupted pulls, %s holds %d entries, want only existing", base, len(entries))
	}
}

// TestCLIInterruptPushRestoresTags: Ctrl-C while `ferry bundle push` writes its second tag exits 130,
// puts the first tag back where it was, and says so.
func TestCLIInterruptPushRestoresTags(t *testing.T) {
	t.Parallel()
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	files := map[string]string{"ferry.yaml": "apiVersion: ferry.dev/v1\nkind: Bundle\nname: a\nversion: 1\nmanifests: m\n", "m/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"}
	env := []string{"DOCKER_CONFIG=" + t.TempDir(), "SOURCE_DATE_EPOCH=1764115200"}
	r := ferry(t, env, "", "bundle", "push", writeRelease(t, files), reg.Addr+"/shop/bundle:stable", "--plain-http", "--format", "go-template={{.digest}}")
	if r.code != 0 {
		t.Fatalf("push v1: exit %d\n%s", r.code, r.stderr)
	}
	old := strings.TrimSpace(r.stdout)
	// The registry, except that the PUT of tag "fresh" hangs until the client hangs up.
	target, _ := url.Parse("http://" + reg.RawAddr)
	rp := httputil.NewSingleHostReverseProxy(target)
	hung := make(chan struct{})
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method == http.MethodPut && strings.HasSuffix(req.URL.Path, "/manifests/fresh") {
			io.Copy(io.Discard, req.Body) // the server notices a closed connection only after the body
			once.Do(func() { close(hung) })
			<-req.Context().Done()
			return
		}
		rp.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	files["m/cm.yaml"] = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n"
	cmd, wait := startFerry(t, env, "bundle", "push", writeRelease(t, files), strings.TrimPrefix(srv.URL, "http://")+"/shop/bundle:stable", "--tag", "fresh", "--plain-http")
	waitFor(t, "the tag fresh", hung)
	cmd.Process.Signal(os.Interrupt)
	r = wait()
	if want := "Error: interrupted by SIGINT (Ctrl-C); tags: stable put back on " + old; r.code != 130 || !strings.HasPrefix(r.stderr, want) {
		t.Errorf("push, then SIGINT = exit %d, stderr %q; want exit 130 and %q", r.code, r.stderr, want)
	}
	if desc, err := reg.Resolve(t, "shop/bundle", "stable"); err != nil || desc.Digest.String() != old {
		t.Errorf("tag stable = %v (%v), want %s", desc.Digest, err, old)
	}
}

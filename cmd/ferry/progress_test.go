package main

import (
	"bytes"
	"io"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/ferry-dev/terraform-provider-ferry/internal/testenv"
)

// slowReader passes bodies through in small chunks with a pause after each, so a loopback
// transfer of 100 MiB takes seconds and the terminal renders states between 0 and the total.
type slowReader struct{ r io.ReadCloser }

func (s slowReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p[:min(len(p), 32<<10)])
	time.Sleep(time.Millisecond)
	return n, err
}

func (s slowReader) Close() error { return s.r.Close() }

// slowProxy puts a proxy in front of the registry at addr that slows request and response bodies.
func slowProxy(t *testing.T, addr string) string {
	t.Helper()
	target, _ := url.Parse("http://" + addr)
	rp := httputil.NewSingleHostReverseProxy(target)
	var srv *httptest.Server
	rp.ModifyResponse = func(r *http.Response) error {
		// Uploads continue at the Location the registry names: through the proxy too.
		if loc := r.Header.Get("Location"); loc != "" {
			if u, err := url.Parse(loc); err == nil && u.Host != "" {
				u.Host = strings.TrimPrefix(srv.URL, "http://")
				r.Header.Set("Location", u.String())
			}
		}
		r.Body = slowReader{r.Body}
		return nil
	}
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil {
			r.Body = slowReader{r.Body}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// ferryPTY runs ferry with a pseudo-terminal as stdin, stdout and stderr and returns all it wrote.
func ferryPTY(t *testing.T, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(ferryBin, args...)
	cmd.Env = append(os.Environ(), env...)
	ptmx, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 132})
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	var out bytes.Buffer
	copied := make(chan struct{})
	go func() {
		io.Copy(&out, ptmx) // ends with EIO once ferry has exited
		close(copied)
	}()
	err = cmd.Wait()
	<-copied
	if err != nil {
		t.Fatalf("ferry %v on a terminal: %v\n%s", args, err, out.String())
	}
	return out.String()
}

var countRE = regexp.MustCompile(`(\d+(?:\.\d)? (?:[KMG]i)?B) / 100\.0 MiB`)

// partialCounts returns the distinct byte counts below the total rendered for a 100 MiB blob.
func partialCounts(out string) []string {
	seen := map[string]bool{}
	var counts []string
	for _, m := range countRE.FindAllStringSubmatch(out, -1) {
		if m[1] != "100.0 MiB" && !seen[m[1]] {
			seen[m[1]] = true
			counts = append(counts, m[1])
		}
	}
	return counts
}

func TestCLIProgress(t *testing.T) {
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	addr := slowProxy(t, reg.Addr)
	// 100 MiB that no compressor shrinks, the same on every run.
	big := make([]byte, 100<<20)
	rand.New(rand.NewSource(1)).Read(big)
	dir := writeRelease(t, map[string]string{"ferry.yaml": "apiVersion: ferry.dev/v1\nkind: Bundle\nname: big\nversion: 1.0.0\nplugins: p\n"})
	if err := os.MkdirAll(filepath.Join(dir, "p"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "p", "blob.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"DOCKER_CONFIG=" + t.TempDir(), "SOURCE_DATE_EPOCH=1764115200"}
	ref := addr + "/big/bundle"

	out := ferryPTY(t, env, "bundle", "push", dir, ref+":1", "--plain-http")
	if c := partialCounts(out); len(c) < 2 {
		t.Errorf("push on a terminal rendered byte counts %v, want at least two below the total:\n%q", c, out)
	}
	for _, want := range []string{"Uploading   plugins.zip", "MiB/s", "ETA ", "Uploaded    plugins.zip", "Tagged      1", "Pushed big 1.0.0"} {
		if !strings.Contains(out, want) {
			t.Errorf("push on a terminal lacks %q:\n%q", want, out)
		}
	}

	// Without a terminal: the result only, no bars, no escape sequences, no partial counts.
	r := ferry(t, env, "", "bundle", "push", dir, ref+":2", "--plain-http")
	if r.code != 0 || r.stderr != "" || strings.Contains(r.stdout, "\x1b[") || strings.Contains(r.stdout, " / ") {
		t.Errorf("push without a terminal = exit %d, stdout %q, stderr %q; want the result alone", r.code, r.stdout, r.stderr)
	}
	// --no-tty keeps a terminal free of progress too.
	if out := ferryPTY(t, env, "bundle", "push", dir, ref+":3", "--plain-http", "--no-tty"); strings.Contains(out, "\x1b[") || strings.Contains(out, "Uploading") {
		t.Errorf("push --no-tty on a terminal showed progress:\n%q", out)
	}

	out = ferryPTY(t, env, "bundle", "pull", ref+":1", "-o", t.TempDir(), "--plain-http")
	if c := partialCounts(out); len(c) < 2 {
		t.Errorf("pull on a terminal rendered byte counts %v, want at least two below the total:\n%q", c, out)
	}
	for _, want := range []string{"Downloading plugins.zip", "MiB/s", "Extracted   plugins.zip", "Pulled big 1.0.0"} {
		if !strings.Contains(out, want) {
			t.Errorf("pull on a terminal lacks %q:\n%q", want, out)
		}
	}
}

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-dev/terraform-provider-ferry/internal/testenv"
)

var ferryBin string

// TestMain builds the ferry binary once; the tests run it as users do.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ferry-e2e-")
	if err != nil {
		panic(err)
	}
	ferryBin = filepath.Join(dir, "ferry")
	if out, err := exec.Command("go", "build", "-o", ferryBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build ferry: %v\n%s", err, out)
		os.Exit(1)
	}
	defer os.RemoveAll(dir)
	testenv.Main(m)
}

type result struct {
	stdout, stderr string
	code           int
}

func ferry(t *testing.T, env []string, stdin string, args ...string) result {
	t.Helper()
	cmd := exec.Command(ferryBin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{stdout.String(), stderr.String(), code}
}

func writeRelease(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, c := range files {
		full := filepath.Join(dir, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestCLIPushInspectPull(t *testing.T) {
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	api := reg.PushImage(t, "shop/api", "1.0", "api")
	dir := writeRelease(t, map[string]string{
		"ferry.yaml":    "apiVersion: ferry.dev/v1\nkind: Bundle\nname: shop\nversion: 1.0.0\nmanifests: m\nimages:\n  api: " + reg.Addr + "/shop/api:1.0\n",
		"m/deploy.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\nspec:\n  template:\n    spec:\n      containers:\n      - image: " + reg.Addr + "/shop/api:1.0\n",
	})
	env := []string{"DOCKER_CONFIG=" + t.TempDir(), "SOURCE_DATE_EPOCH=1764115200"}
	ref := reg.Addr + "/shop/bundle"

	r := ferry(t, env, "", "bundle", "push", dir, ref, "--tag", "latest", "--plain-http", "--format", "json")
	if r.code != 0 {
		t.Fatalf("push exit %d: %s", r.code, r.stderr)
	}
	if r.stderr != "" {
		t.Errorf("push wrote to stderr without a terminal: %q", r.stderr)
	}
	var pushed struct {
		Digest, PinnedReference string
		Tags                    []string
		Uploaded                int
		Rewrites                []struct{ From, To string }
		Images                  []struct{ Name, Digest string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &pushed); err != nil {
		t.Fatalf("push --format json: %v\n%s", err, r.stdout)
	}
	if pushed.PinnedReference != ref+"@"+pushed.Digest || strings.Join(pushed.Tags, ",") != "1.0.0,latest" || pushed.Uploaded != 2 {
		t.Errorf("push JSON = %+v", pushed)
	}
	if len(pushed.Rewrites) != 1 || pushed.Rewrites[0].To != reg.Addr+"/shop/api@"+api.Digest.String() {
		t.Errorf("push rewrites = %+v, want the api image pinned to %s", pushed.Rewrites, api.Digest)
	}

	r = ferry(t, env, "", "bundle", "inspect", ref+":latest", "--plain-http", "--format", "go-template={{.digest}} {{.name}} {{(index .images 0).digest}}")
	if want := pushed.Digest + " shop " + api.Digest.String() + "\n"; r.code != 0 || r.stdout != want {
		t.Errorf("inspect go-template = %q (exit %d, %s), want %q", r.stdout, r.code, r.stderr, want)
	}
	r = ferry(t, env, "", "bundle", "inspect", ref+":latest", "--plain-http")
	for _, want := range []string{"Name:", "shop", "Digest:", pushed.Digest, "manifests.tar.gz", "application/vnd.oci.image.layer.v1.tar+gzip"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("inspect text lacks %q:\n%s", want, r.stdout)
		}
	}

	out := t.TempDir()
	r = ferry(t, env, "", "bundle", "pull", pushed.PinnedReference, "-o", out, "--plain-http", "--format", "json")
	if r.code != 0 {
		t.Fatalf("pull exit %d: %s", r.code, r.stderr)
	}
	data, err := os.ReadFile(filepath.Join(out, "manifests", "deploy.yaml"))
	if err != nil || !strings.Contains(string(data), "@"+api.Digest.String()) {
		t.Errorf("pulled deploy.yaml = %s, %v", data, err)
	}
	if _, err := os.Stat(filepath.Join(out, "ferry.lock.json")); err != nil {
		t.Errorf("lock file: %v", err)
	}

	// Progress appears on a terminal (script gives the command a pseudo-terminal).
	if script, err := exec.LookPath("script"); err == nil {
		cmd := exec.Command(script, "-qec", ferryBin+" bundle push "+dir+" "+ref+":tty --plain-http", "/dev/null")
		cmd.Env = append(os.Environ(), env...)
		outTTY, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(outTTY), "Exists") || !strings.Contains(string(outTTY), "Tagged") {
			t.Errorf("push on a terminal = %v\n%s, want progress lines", err, outTTY)
		}
	}
}

func TestCLIExitCodes(t *testing.T) {
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	reg.PushImage(t, "shop/api", "1.0", "api")
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := l.Addr().String()
	l.Close()
	good := writeRelease(t, map[string]string{"ferry.yaml": "apiVersion: ferry.dev/v1\nkind: Bundle\nname: a\nversion: 1\nplugins: p\n", "p/x": "x"})
	env := []string{"DOCKER_CONFIG=" + t.TempDir()}
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"bad spec", []string{"bundle", "push", writeRelease(t, map[string]string{"ferry.yaml": "apiVersion: ferry.dev/v1\nkind: Bundle\nname: a\nversion: 1\nplugins: p\nbogus: 1\n"}), "oci-layout:" + t.TempDir()}, 2, "ferry.yaml:6: bogus: unknown field"},
		{"bad reference", []string{"bundle", "push", good, "no-host"}, 2, "invalid reference"},
		{"bad format", []string{"bundle", "inspect", reg.Addr + "/x:1", "--format", "yaml"}, 2, `invalid format type: "yaml"`},
		{"not found", []string{"bundle", "inspect", reg.Addr + "/shop/none:1", "--plain-http"}, 2, "not found"},
		{"not a bundle", []string{"bundle", "inspect", reg.Addr + "/shop/api:1.0", "--plain-http"}, 2, "not a ferry bundle"},
		{"image not found", []string{"bundle", "push", writeRelease(t, map[string]string{"ferry.yaml": "apiVersion: ferry.dev/v1\nkind: Bundle\nname: a\nversion: 1\nplugins: p\nimages:\n  x: " + reg.Addr + "/shop/api:2\n", "p/x": "x"}), reg.Addr + "/b:1", "--plain-http"}, 2, "image x (" + reg.Addr + "/shop/api:2): not found"},
		{"unreachable", []string{"bundle", "push", good, closed + "/b:1", "--plain-http", "--retries", "2"}, 3, "unreachable"},
		{"unknown only", []string{"bundle", "pull", reg.Addr + "/b:1", "-o", t.TempDir(), "--only", "docs", "--plain-http"}, 2, `--only docs: not a layer role`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ferry(t, env, "", tt.args...)
			if r.code != tt.code || !strings.Contains(r.stderr, tt.stderr) {
				t.Errorf("ferry %v = exit %d, stderr %q; want exit %d with %q", tt.args, r.code, r.stderr, tt.code, tt.stderr)
			}
		})
	}
}

func TestCLILoginLogout(t *testing.T) {
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{Auth: true})
	dir := writeRelease(t, map[string]string{"ferry.yaml": "apiVersion: ferry.dev/v1\nkind: Bundle\nname: a\nversion: 1\nplugins: p\n", "p/x": "x"})
	env := []string{"DOCKER_CONFIG=" + t.TempDir()}

	if r := ferry(t, env, "", "bundle", "push", dir, reg.Addr+"/a:1", "--plain-http"); r.code != 2 || !strings.Contains(r.stderr, "unauthorized") {
		t.Errorf("push before login = exit %d %q, want 2 unauthorized", r.code, r.stderr)
	}
	if r := ferry(t, env, "wrong\n", "login", reg.Addr, "-u", reg.Username, "--password-stdin", "--plain-http"); r.code == 0 {
		t.Errorf("login with a wrong password succeeded")
	}
	if r := ferry(t, env, reg.Password+"\n", "login", reg.Addr, "-u", reg.Username, "--password-stdin", "--plain-http"); r.code != 0 {
		t.Fatalf("login = exit %d %s", r.code, r.stderr)
	}
	if r := ferry(t, env, "", "bundle", "push", dir, reg.Addr+"/a:1", "--plain-http"); r.code != 0 {
		t.Errorf("push after login = exit %d %s", r.code, r.stderr)
	}
	if r := ferry(t, env, "", "logout", reg.Addr); r.code != 0 {
		t.Errorf("logout = exit %d %s", r.code, r.stderr)
	}
	if r := ferry(t, env, "", "bundle", "inspect", reg.Addr+"/a:1", "--plain-http"); r.code != 2 {
		t.Errorf("inspect after logout = exit %d %q, want 2", r.code, r.stderr)
	}
}

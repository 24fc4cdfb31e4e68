package main

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ferry-dev/terraform-provider-ferry/cmd/ferry/internal/option"
	"github.com/ferry-dev/terraform-provider-ferry/cmd/ferry/root"
	"github.com/ferry-dev/terraform-provider-ferry/internal/testenv"
)

// secretName matches the flags that take a secret.
var secretName = regexp.MustCompile(`(?i)pass(word)?|passwd|token|secret|credential|api-?key|private-key`)

// secretFlag is a flag that takes a secret, with its safe forms.
type secretFlag struct {
	cmd        *cobra.Command
	flag       string
	stdin, env string
}

// secretFlags returns every flag of ferry's commands that takes a secret. It fails t for a secret
// flag without both safe forms: a standard-input flag and an environment variable, both documented
// in docs/cli.md (the command line is visible in ps and stays in the shell history).
func secretFlags(t *testing.T) []secretFlag {
	t.Helper()
	doc, err := os.ReadFile("../../docs/cli.md")
	if err != nil {
		t.Fatal(err)
	}
	var found []secretFlag
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			forms := f.Annotations[option.SecretAnnotation]
			if !secretName.MatchString(f.Name) && forms == nil {
				return
			}
			if f.Value.Type() == "bool" && strings.HasSuffix(f.Name, "-stdin") {
				return // a safe form itself
			}
			if len(forms) != 2 {
				t.Errorf("%s --%s takes a secret only on the command line, where ps and the shell history show it: declare it with option.Secret, which adds --%s-stdin and an environment variable", c.CommandPath(), f.Name, f.Name)
				return
			}
			s := secretFlag{cmd: c, flag: f.Name, stdin: forms[0], env: forms[1]}
			if sf := c.LocalFlags().Lookup(s.stdin); sf == nil || sf.Value.Type() != "bool" {
				t.Errorf("%s --%s: its standard-input form --%s is not a flag of the command", c.CommandPath(), f.Name, s.stdin)
			}
			for _, form := range []string{"--" + s.stdin, s.env} {
				if s.env == "" || !bytes.Contains(doc, []byte("`"+form+"`")) {
					t.Errorf("%s --%s: docs/cli.md does not document its safe form `%s`", c.CommandPath(), f.Name, form)
				}
			}
			found = append(found, s)
		})
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root.New("test"))
	return found
}

// TestCLISecretFlagsHaveSafeForms: every secret flag of every command (the registry password of
// login, the bearer token of the app and window commands) can be given on standard input and in
// an environment variable.
func TestCLISecretFlagsHaveSafeForms(t *testing.T) {
	t.Parallel()
	var names []string
	for _, s := range secretFlags(t) {
		names = append(names, s.cmd.CommandPath()+" --"+s.flag)
	}
	for _, want := range []string{"ferry login --password", "ferry app sync --token", "ferry app wait --token", "ferry app status --token", "ferry app terminate --token", "ferry window check --token"} {
		if !slices.Contains(names, want) {
			t.Errorf("secret flags = %v, want %s among them", names, want)
		}
	}
}

// recorder is a fake server that refuses every request and records the credentials it was sent.
type recorder struct {
	mu    sync.Mutex
	seen  []string
	srv   *httptest.Server
	extra []string // the command's other arguments pointing at the server
}

func (r *recorder) saw(secret string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Contains(r.seen, secret)
}

// kubeRecorder is a Kubernetes API server that answers 401 Unauthorized and records bearer tokens.
// It serves HTTPS: client-go sends credentials over TLS only.
func kubeRecorder(t *testing.T) *recorder {
	r := &recorder{}
	r.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.seen = append(r.seen, strings.TrimPrefix(req.Header.Get("Authorization"), "Bearer "))
		r.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}`)
	}))
	t.Cleanup(r.srv.Close)
	r.extra = []string{"--server", r.srv.URL, "--insecure-skip-tls-verify", "--argocd-namespace", "argocd"}
	return r
}

// registryRecorder is a registry that answers 401 with a Basic challenge and records passwords.
func registryRecorder(t *testing.T) *recorder {
	r := &recorder{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if _, p, ok := req.BasicAuth(); ok {
			r.mu.Lock()
			r.seen = append(r.seen, p)
			r.mu.Unlock()
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="ferry-test"`)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
	}))
	t.Cleanup(r.srv.Close)
	r.extra = []string{strings.TrimPrefix(r.srv.URL, "http://"), "-u", "ci-bot", "--plain-http", "--retries", "1"}
	return r
}

func newSecret(t *testing.T) string {
	b := make([]byte, 12)
	rand.Read(b)
	return "s3cr3t-" + hex.EncodeToString(b)
}

// TestCLISecretsNeverPrinted gives every secret flag its secret in each form (standard input, the
// environment variable, the discouraged command line) to a server that refuses it, and checks that
// the server received it and that ferry's output, errors included, never shows it. Commands whose
// secret flags have no case here fail the test.
func TestCLISecretsNeverPrinted(t *testing.T) {
	t.Parallel()
	// The arguments before the ones pointing at the fake server, per command.
	args := map[string][]string{
		"ferry login":         {"login"},
		"ferry app sync":      {"app", "sync", "shop-acme", "--timeout", "20s"},
		"ferry app wait":      {"app", "wait", "shop-acme", "--timeout", "20s"},
		"ferry app status":    {"app", "status", "shop-acme"},
		"ferry app terminate": {"app", "terminate", "shop-acme"},
		"ferry window check":  {"window", "check", "--environment", "acme"},
		"ferry fleet status":  {"fleet", "status"},
		"ferry fleet rollout": {"fleet", "rollout", "registry.example.com/shop/bundle:1.4.0", "-l", "ring=early"},
	}
	servers := map[string]func(*testing.T) *recorder{"password": registryRecorder, "token": kubeRecorder}
	// No kubeconfig, registry credential or secret from the test's own environment.
	home := t.TempDir()
	base := []string{"HOME=" + home, "DOCKER_CONFIG=" + home, "KUBECONFIG=", "KUBE_CONFIG_PATH=", "KUBE_CONFIG_PATHS=", "KUBE_HOST=", "KUBE_CTX=", "KUBE_TOKEN=", root.EnvRegistryPassword + "="}
	for _, s := range secretFlags(t) {
		path := s.cmd.CommandPath()
		cmdArgs, ok := args[path]
		server, ok2 := servers[s.flag]
		if !ok || !ok2 {
			t.Errorf("%s --%s takes a secret and has no case in TestCLISecretsNeverPrinted: add one", path, s.flag)
			continue
		}
		srv := server(t)
		for _, form := range []string{"stdin", "env", "argv"} {
			secret := newSecret(t)
			a := append(slices.Clone(cmdArgs), srv.extra...)
			env := slices.Clone(base)
			stdin := ""
			switch form {
			case "stdin":
				a, stdin = append(a, "--"+s.stdin), secret+"\n"
			case "env":
				env = append(env, s.env+"="+secret)
			case "argv":
				a = append(a, "--"+s.flag, secret)
			}
			r := ferry(t, env, stdin, a...)
			if r.code == 0 {
				t.Errorf("%s with the secret in %s = exit 0, want the server's refusal", path, form)
			}
			if !srv.saw(secret) {
				t.Errorf("%s did not send the secret given in %s (form %s) to the server\n%s", path, s.flag, form, r.stderr)
			}
			for _, leak := range []string{secret, base64.StdEncoding.EncodeToString([]byte("ci-bot:" + secret))} {
				if strings.Contains(r.stdout+r.stderr, leak) {
					t.Errorf("%s with the secret in %s printed it:\nstdout: %s\nstderr: %s", path, form, r.stdout, r.stderr)
				}
			}
			if warned := strings.Contains(r.stderr, "visible to other users in ps"); warned != (form == "argv") {
				t.Errorf("%s with the secret in %s: warning about ps = %v, want it only for the command line\n%s", path, form, warned, r.stderr)
			}
		}
	}

	// A login that succeeds, with the password in the environment.
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{Auth: true})
	r := ferry(t, append(base, root.EnvRegistryPassword+"="+reg.Password), "", "login", reg.Addr, "-u", reg.Username, "--plain-http")
	if r.code != 0 || r.stdout != "Login succeeded\n" || strings.Contains(r.stdout+r.stderr, reg.Password) {
		t.Errorf("login with %s = exit %d\nstdout: %s\nstderr: %s", root.EnvRegistryPassword, r.code, r.stdout, r.stderr)
	}
	// Both command-line forms at once, or an empty standard input, are usage errors naming the flags.
	r = ferry(t, base, "x\n", "login", reg.Addr, "-u", reg.Username, "-p", "y", "--password-stdin")
	if r.code != 2 || !strings.Contains(r.stderr, "--password and --password-stdin are mutually exclusive") {
		t.Errorf("login -p --password-stdin = exit %d %q, want 2 naming both flags", r.code, r.stderr)
	}
	r = ferry(t, base, "", "app", "status", "shop", "--server", "http://127.0.0.1:1", "--token-stdin")
	if r.code != 2 || !strings.Contains(r.stderr, "--token-stdin: standard input is empty") {
		t.Errorf("app status --token-stdin with nothing on standard input = exit %d %q, want 2", r.code, r.stderr)
	}
}

// terminal runs ferry under script(1), which gives it a pseudo-terminal; the test plays the user at
// the terminal through in and reads what the terminal shows through out.
type terminal struct {
	cmd  *exec.Cmd
	in   io.WriteCloser
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
}

func startTerminal(t *testing.T, env []string, args ...string) *terminal {
	t.Helper()
	script, err := exec.LookPath("script")
	if err != nil {
		t.Skip("script (util-linux) is not installed")
	}
	quoted := []string{ferryBin}
	for _, a := range args {
		quoted = append(quoted, "'"+a+"'")
	}
	term := &terminal{cmd: exec.Command(script, "-qec", strings.Join(quoted, " "), "/dev/null"), done: make(chan struct{})}
	term.cmd.Env = append(os.Environ(), env...)
	term.in, _ = term.cmd.StdinPipe()
	outR, _ := term.cmd.StdoutPipe()
	term.cmd.Stderr = term.cmd.Stdout
	if err := term.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := outR.Read(buf)
			term.mu.Lock()
			term.out.Write(buf[:n])
			term.mu.Unlock()
			if err != nil {
				close(term.done)
				return
			}
		}
	}()
	t.Cleanup(func() { term.cmd.Process.Kill(); <-term.done; term.cmd.Wait() })
	return term
}

func (term *terminal) shown() string {
	term.mu.Lock()
	defer term.mu.Unlock()
	return term.out.String()
}

// waitShown waits until the terminal shows s, then a little longer: ferry prints its prompt just
// before it turns the echo off, and what a user types sooner than a person can is echoed.
func (term *terminal) waitShown(t *testing.T, s string) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); !strings.Contains(term.shown(), s); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the terminal never showed %q:\n%s", s, term.shown())
		}
	}
	time.Sleep(300 * time.Millisecond)
}

// exit waits for ferry to exit and returns its exit code and everything the terminal showed.
func (term *terminal) exit(t *testing.T) (int, string) {
	t.Helper()
	select {
	case <-term.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("ferry did not exit:\n%s", term.shown())
	}
	term.cmd.Wait()
	term.in.Close()
	return term.cmd.ProcessState.ExitCode(), term.shown()
}

// TestCLILoginPrompt: `ferry login` without a password on the command line, standard input or in the
// environment asks for it on the terminal without echoing what the user types; Ctrl-C at the prompt
// exits 130; without a terminal it is a usage error pointing at --password-stdin.
func TestCLILoginPrompt(t *testing.T) {
	t.Parallel()
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{Auth: true})
	env := []string{"DOCKER_CONFIG=" + t.TempDir(), root.EnvRegistryPassword + "="}

	term := startTerminal(t, env, "login", reg.Addr, "-u", reg.Username, "--plain-http")
	term.waitShown(t, "Password: ")
	io.WriteString(term.in, reg.Password+"\r") // the user types the password and Enter
	code, shown := term.exit(t)
	if code != 0 || !strings.Contains(shown, "Login succeeded") {
		t.Errorf("login at the prompt = exit %d, the terminal showed:\n%s", code, shown)
	}
	if strings.Contains(shown, reg.Password) {
		t.Errorf("the terminal echoed the password typed at the prompt:\n%q", shown)
	}
	if r := ferry(t, env, "", "bundle", "inspect", reg.Addr+"/none:1", "--plain-http"); !strings.Contains(r.stderr, "not found") {
		t.Errorf("after the login, inspect = exit %d %q, want the credential used (not found, not unauthorized)", r.code, r.stderr)
	}

	// Ctrl-C at the prompt.
	term = startTerminal(t, env, "login", reg.Addr, "-u", reg.Username, "--plain-http")
	term.waitShown(t, "Password: ")
	io.WriteString(term.in, "half\x03")
	if code, shown := term.exit(t); code != 130 || !strings.Contains(shown, "interrupted by SIGINT") || strings.Contains(shown, "half") {
		t.Errorf("Ctrl-C at the prompt = exit %d, the terminal showed %q; want exit 130, the interruption and no echo", code, shown)
	}

	// No terminal: a usage error, and the prompt is not shown.
	r := ferry(t, env, reg.Password+"\n", "login", reg.Addr, "-u", reg.Username, "--plain-http")
	if r.code != 2 || !strings.Contains(r.stderr, "--password-stdin") || strings.Contains(r.stderr, "Password:") {
		t.Errorf("login without a terminal or password = exit %d %q, want 2 pointing at --password-stdin", r.code, r.stderr)
	}
}

package main

import (
	"encoding/json"
	"net"
	"net/url"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-dev/terraform-provider-ferry/internal/testenv"
)

// terraformWords are the provider's attribute names, which the CLI's errors must not use.
var terraformWords = []string{"config_path", "config_context", "kubernetes.", "cluster_ca_certificate", "client_certificate", "request_timeout", "attempts:", "insecure ="}

// stalledServer is an API server that accepts connections and never answers; it counts them.
func stalledServer(t *testing.T) (addr string, accepted *atomic.Int32) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted = new(atomic.Int32)
	conns := make(chan net.Conn, 100)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			conns <- c
		}
	}()
	t.Cleanup(func() {
		l.Close()
		for len(conns) > 0 {
			(<-conns).Close()
		}
	})
	return l.Addr().String(), accepted
}

// TestCLIUnreachable: every command that talks to the cluster reports a cluster it cannot reach
// (nothing listening, an API server that never answers, a name that does not resolve) as
// transient, exit 3, within --request-timeout × --retries plus backoff, with a hint from the
// cause in the CLI's own words; a bound that is not positive is a usage error before any request.
func TestCLIUnreachable(t *testing.T) {
	t.Parallel()
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := l.Addr().String()
	l.Close()
	stalled, accepted := stalledServer(t)
	env := []string{"KUBE_CONFIG_PATH=", "KUBE_CONFIG_PATHS=", "KUBECONFIG=", "KUBE_HOST=", "KUBE_TOKEN=", "KUBE_CTX="}
	servers := []struct {
		name, server string
		hint         []string
	}{
		{"closed port", "https://" + closed, []string{"Nothing listens at " + closed + ": check the address and that the API server runs"}},
		{"stalled server", "https://" + stalled, []string{stalled + " did not answer within the request timeout of 300ms", "raise --request-timeout"}},
		{"unresolvable host", "https://nosuch.invalid:6443", []string{"Cannot resolve nosuch.invalid: check the server address in the kubeconfig or --server"}},
	}
	commands := [][]string{
		{"app", "wait", "shop"},
		{"app", "status", "shop"},
		{"app", "sync", "shop"},
		{"app", "terminate", "shop"},
		{"window", "check", "--environment", "acme"},
	}
	for _, s := range servers {
		for _, c := range commands {
			args := append(append([]string{}, c...), "--server", s.server, "--token-stdin", "--request-timeout", "300ms", "--retries", "2")
			start := time.Now()
			r := ferry(t, env, "token\n", args...)
			took := time.Since(start)
			what := s.name + ": ferry " + strings.Join(c, " ")
			if r.code != 3 {
				t.Errorf("%s = exit %d, want 3 (transient)\n%s", what, r.code, r.stderr)
			}
			if took > 30*time.Second {
				t.Errorf("%s took %s, want it bounded by --request-timeout × --retries", what, took.Round(time.Second))
			}
			for _, want := range append([]string{"(after 2 attempts)"}, s.hint...) {
				if !strings.Contains(r.stderr, want) {
					t.Errorf("%s: stderr does not say %q:\n%s", what, want, r.stderr)
				}
			}
			for _, word := range terraformWords {
				if strings.Contains(r.stderr, word) {
					t.Errorf("%s: stderr uses the Terraform word %q:\n%s", what, word, r.stderr)
				}
			}
			if strings.Contains(r.stderr, "warning:") {
				t.Errorf("%s: stderr has a warning besides the error:\n%s", what, r.stderr)
			}
		}
	}

	// Bounds that are not positive fail before any request, naming the flag.
	before := accepted.Load()
	for _, tt := range []struct{ flag, value string }{{"--request-timeout", "0s"}, {"--request-timeout", "-1s"}, {"--retries", "0"}} {
		for _, c := range commands {
			args := append(append([]string{}, c...), "--server", "https://"+stalled, "--token", "t", tt.flag, tt.value)
			r := ferry(t, env, "", args...)
			if r.code != 2 || !strings.Contains(r.stderr, tt.flag+" ") || !strings.Contains(r.stderr, "Usage: "+tt.flag) {
				t.Errorf("ferry %s %s %s = exit %d, want 2 naming the flag:\n%s", strings.Join(c, " "), tt.flag, tt.value, r.code, r.stderr)
			}
		}
	}
	if n := accepted.Load() - before; n != 0 {
		t.Errorf("invalid bounds made %d connections, want none", n)
	}

	// Invalid settings name the flag, not the provider's attribute.
	r := ferry(t, env, "", "window", "check", "--environment", "acme", "--kubeconfig", "/nonexistent")
	if r.code != 2 || !strings.Contains(r.stderr, `Error: --kubeconfig: invalid Kubernetes settings: kubeconfig "/nonexistent" cannot be read`) {
		t.Errorf("window check --kubeconfig /nonexistent = exit %d, want 2 naming --kubeconfig:\n%s", r.code, r.stderr)
	}
	for _, word := range terraformWords {
		if strings.Contains(r.stderr, word) {
			t.Errorf("window check --kubeconfig /nonexistent: stderr uses the Terraform word %q:\n%s", word, r.stderr)
		}
	}
}

// TestCLIAppWaitClusterLost: `ferry app wait` on a terminal shows what it waits for, and when the
// cluster goes away mid-wait (a TCP proxy in front of the real API server taken down) it ends as
// transient, exit 3, within --request-timeout × --retries plus backoff — not at --timeout.
func TestCLIAppWaitClusterLost(t *testing.T) {
	e := sharedEnv.Get(t)
	t.Parallel()
	env := []string{"KUBE_CONFIG_PATH=" + e.Cluster.Kubeconfig}
	name := "cli-wait-lost"
	later := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: later, annotations: {argocd.argoproj.io/sync-wave: \"1\"}}\n"
	appFixture(t, e, name, e.ArgoCD.ClusterServer, nil, map[string]string{"deploy.yaml": stuckDeployment, "later.yaml": later})
	ns := []string{"--argocd-namespace", e.ArgoCD.Namespace}
	if r := ferry(t, env, "", append([]string{"app", "sync", name, "--no-wait"}, ns...)...); r.code != 0 {
		t.Fatalf("sync --no-wait = exit %d: %s", r.code, r.stderr)
	}
	t.Cleanup(func() { ferry(t, env, "", append([]string{"app", "terminate", name}, ns...)...) })

	u, err := url.Parse(e.Cluster.Host)
	if err != nil {
		t.Fatal(err)
	}
	proxy := testenv.StartTCPProxy(t, u.Host)
	args := append([]string{"app", "wait", name, "--server", "https://" + proxy.Addr, "--timeout", "10m", "--request-timeout", "2s", "--retries", "3"}, ns...)

	// On a terminal: progress first, then the lost cluster.
	term := startTerminal(t, env, args...)
	term.waitShown(t, "operation Running: waiting for")
	proxy.Down()
	start := time.Now()
	code, shown := term.exit(t)
	if took := time.Since(start); took > 60*time.Second {
		t.Errorf("ferry app wait took %s after the cluster went away, want about --request-timeout × --retries", took.Round(time.Second))
	}
	for _, want := range []string{name + ": ", "unreachable after 3 attempts while waiting for application " + name, "[transient]", "Nothing listens at " + proxy.Addr} {
		if !strings.Contains(shown, want) {
			t.Errorf("the terminal does not show %q:\n%s", want, shown)
		}
	}
	if code != 3 {
		t.Errorf("ferry app wait after the cluster went away = exit %d, want 3:\n%s", code, shown)
	}

	// As JSON, without a terminal: the outcome on stdout, no progress.
	if err := proxy.Up(); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(ferryBin, append(args, "--format", "json")...)
	cmd.Env = append(cmd.Environ(), env...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Second) // reading the application and watching it
	proxy.Down()
	start = time.Now()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		<-done
		t.Fatalf("ferry app wait --format json did not end 2 minutes after the cluster went away")
	}
	var out struct{ Class, Error string }
	if err := json.Unmarshal([]byte(stdout.String()), &out); err != nil {
		t.Fatalf("ferry app wait --format json: %v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	if code := cmd.ProcessState.ExitCode(); code != 3 || out.Class != "transient" || !strings.Contains(out.Error, "unreachable after 3 attempts") {
		t.Errorf("ferry app wait --format json = exit %d class %q (%s), want exit 3 class transient", code, out.Class, out.Error)
	}
	if took := time.Since(start); took > 60*time.Second {
		t.Errorf("ferry app wait --format json took %s after the cluster went away", took.Round(time.Second))
	}
}

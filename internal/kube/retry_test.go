package kube

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
)

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// stalledListener accepts connections and never answers; it counts them.
func stalledListener(t *testing.T) (addr string, accepted *atomic.Int32) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted = new(atomic.Int32)
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String(), accepted
}

// countingTransport is net/http's transport, counting the requests it is given.
type countingTransport struct {
	next http.RoundTripper
	n    atomic.Int32
}

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.next.RoundTrip(req)
}

func newRetry(next http.RoundTripper, timeout time.Duration, attempts int) (*retryTransport, *countingTransport) {
	if next == nil {
		next = http.DefaultTransport.(*http.Transport).Clone()
	}
	ct := &countingTransport{next: next}
	return &retryTransport{next: ct, timeout: timeout, attempts: attempts}, ct
}

// TestRetryClosedPort: a refused connection is tried Attempts times and ends as an
// *UnreachableError that says so, with a hint naming the address; through client-go (RESTConfig)
// too.
func TestRetryClosedPort(t *testing.T) {
	addr := closedAddr(t)
	rt, ct := newRetry(nil, time.Second, 3)
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/api", strings.NewReader("{}"))
	_, err := rt.RoundTrip(req)
	var ue *UnreachableError
	if !errors.As(err, &ue) || ue.Attempts != 3 || ct.n.Load() != 3 || ue.Host != addr {
		t.Fatalf("RoundTrip(POST to a closed port) = %v after %d attempts, want an *UnreachableError after 3", err, ct.n.Load())
	}
	if !strings.HasSuffix(err.Error(), "(after 3 attempts)") || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("error = %q, want the cause and the attempts", err)
	}
	if got, want := Hint(err), "nothing listens at "+addr; !strings.HasPrefix(got, want) {
		t.Errorf("Hint() = %q, want it to start %q", got, want)
	}

	yes := true
	cfg, err := (Options{Host: "https://" + addr, Insecure: &yes, RequestTimeout: 200 * time.Millisecond, Attempts: 2}).RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = dc.ServerVersion()
	if !errors.As(err, &ue) || ue.Attempts != 2 {
		t.Errorf("ServerVersion() of a closed port = %v, want an *UnreachableError after 2 attempts", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("ServerVersion() of a closed port took %s, want it bounded by the attempts and backoff", took)
	}
}

// TestRetryStalledServer: a server that accepts and never answers: each attempt of a GET ends at
// the request timeout, the GET is tried Attempts times, and the error says the timeout; a POST is
// tried once, as the server may have acted on it.
func TestRetryStalledServer(t *testing.T) {
	addr, accepted := stalledListener(t)
	const timeout = 200 * time.Millisecond
	rt, _ := newRetry(nil, timeout, 3)
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/api", nil)
	start := time.Now()
	_, err := rt.RoundTrip(req)
	took := time.Since(start)
	var ue *UnreachableError
	if !errors.As(err, &ue) || ue.Attempts != 3 || accepted.Load() != 3 {
		t.Fatalf("RoundTrip(GET to a stalled server) = %v (%d connections), want an *UnreachableError after 3 attempts", err, accepted.Load())
	}
	if !strings.Contains(err.Error(), "no answer within the request timeout of 200ms") {
		t.Errorf("error = %q, want it to name the request timeout", err)
	}
	if got := Hint(err); !strings.Contains(got, addr+" did not answer within the request timeout of 200ms") {
		t.Errorf("Hint() = %q, want it to say the server did not answer in time", got)
	}
	// 3 × 200ms + 250ms + 500ms of backoff; an upper bound only, to prove the timeout applies.
	if took < 3*timeout || took > 10*(3*timeout+750*time.Millisecond) {
		t.Errorf("RoundTrip(GET to a stalled server) took %s, want about 3 × 200ms plus backoff", took)
	}

	req, _ = http.NewRequest(http.MethodPost, "http://"+addr+"/api", strings.NewReader("{}"))
	before := accepted.Load()
	_, err = rt.RoundTrip(req)
	if !errors.As(err, &ue) || ue.Attempts != 1 || accepted.Load() != before+1 {
		t.Errorf("RoundTrip(POST to a stalled server) = %v (%d connections), want an *UnreachableError after 1 attempt", err, accepted.Load()-before)
	}

	// The caller's context wins over the attempts.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	req, _ = http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/api", nil)
	rt.timeout = time.Minute
	start = time.Now()
	if _, err = rt.RoundTrip(req); !errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ue) {
		t.Errorf("RoundTrip(GET, caller's deadline 300ms) = %v, want the caller's deadline", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("RoundTrip(GET, caller's deadline 300ms) took %s", took)
	}
}

// TestRetryResetNotRetried: a connection reset after the request was sent is not retried here: a
// POST may have been applied, and client-go retries a GET itself.
func TestRetryResetNotRetried(t *testing.T) {
	var served atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		served.Add(1)
		c, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
	}))
	defer srv.Close()
	rt, _ := newRetry(nil, time.Second, 5)
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api", strings.NewReader("{}"))
	_, err := rt.RoundTrip(req)
	var ue *UnreachableError
	if err == nil || errors.As(err, &ue) || served.Load() != 1 {
		t.Errorf("RoundTrip(POST, reset) = %v, served %d times, want the reset after 1 attempt", err, served.Load())
	}
}

// TestRetryReplaysBody: a request whose first dial fails is sent again with its body from GetBody.
func TestRetryReplaysBody(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(w, r.Body)
	}))
	defer srv.Close()
	down := closedAddr(t)
	var dials atomic.Int32
	tr := http.DefaultTransport.(*http.Transport).Clone()
	var d net.Dialer
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if dials.Add(1) == 1 {
			addr = down // the server is not up yet
		}
		return d.DialContext(ctx, network, addr)
	}
	rt, ct := newRetry(tr, time.Second, 3)
	body := `{"kind":"Status"}`
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api", bytes.NewReader([]byte(body)))
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatalf("RoundTrip(POST, first dial refused) = %v, want the second attempt to succeed", err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(got) != body || ct.n.Load() != 2 {
		t.Errorf("server got %q in attempt %d, want %q in attempt 2", got, ct.n.Load(), body)
	}

	// Without GetBody the body cannot be sent again.
	tr.CloseIdleConnections()
	dials.Store(0)
	req, _ = http.NewRequest(http.MethodPost, srv.URL+"/api", io.NopCloser(strings.NewReader(body)))
	_, err = rt.RoundTrip(req)
	var ue *UnreachableError
	if !errors.As(err, &ue) || ue.Attempts != 1 {
		t.Errorf("RoundTrip(POST without GetBody, first dial refused) = %v, want an *UnreachableError after 1 attempt", err)
	}
}

// TestRetryWatchNoDeadline: a watch's stream may outlast the request timeout; another request's
// body may not.
func TestRetryWatchNoDeadline(t *testing.T) {
	const timeout = 200 * time.Millisecond
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "first\n")
		w.(http.Flusher).Flush()
		time.Sleep(3 * timeout)
		_, _ = io.WriteString(w, "second\n")
	}))
	defer srv.Close()
	rt, _ := newRetry(nil, timeout, 3)
	for _, tt := range []struct {
		query  string
		stream bool
	}{{"?watch=true", true}, {"?watch=1&resourceVersion=5", true}, {"", false}, {"?watch=false", false}} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/apis/argoproj.io/v1alpha1/applications"+tt.query, nil)
		resp, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatalf("RoundTrip(%s) = %v", tt.query, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if tt.stream && (err != nil || string(body) != "first\nsecond\n") {
			t.Errorf("watch %s read %q, %v, want the whole stream past the request timeout", tt.query, body, err)
		}
		if !tt.stream && err == nil {
			t.Errorf("GET %s read %q without error, want the request timeout to end a stalled body", tt.query, body)
		}
	}
}

// TestHint: the hint follows the cause.
func TestHint(t *testing.T) {
	cfg, err := (Options{Host: "https://nosuch.invalid:6443", RequestTimeout: time.Second, Attempts: 1}).RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = dc.ServerVersion()
	if got, want := Hint(err), "cannot resolve nosuch.invalid: check the server address"; !strings.HasPrefix(got, want) {
		t.Errorf("Hint(%v) = %q, want it to start %q", err, got, want)
	}
	if got := Hint(errors.New("forbidden")); got != "" {
		t.Errorf("Hint(forbidden) = %q, want none", got)
	}
}

// TestNames: the CLI's names replace attribute names in errors; without them they stay.
func TestNames(t *testing.T) {
	names := map[string]string{"config_path": "--kubeconfig", "config_paths": "$KUBECONFIG", "insecure": "--insecure-skip-tls-verify", "cluster_ca_certificate": "$KUBE_CLUSTER_CA_CERT_DATA"}
	yes := true
	for _, tt := range []struct {
		opts Options
		want string
	}{
		{Options{ConfigPath: "/nonexistent", Names: names}, `--kubeconfig: invalid Kubernetes settings: kubeconfig "/nonexistent" cannot be read`},
		{Options{ConfigPaths: []string{"/nonexistent"}, Names: names}, `$KUBECONFIG[0]: invalid Kubernetes settings`},
		{Options{Host: "https://x", Insecure: &yes, ClusterCACertificate: "PEM", Names: names}, "--insecure-skip-tls-verify: invalid Kubernetes settings: --insecure-skip-tls-verify cannot be combined with $KUBE_CLUSTER_CA_CERT_DATA; remove one"},
		{Options{ConfigPath: "/nonexistent"}, `config_path: invalid Kubernetes settings`},
		{Options{Host: "https://x", Attempts: -1}, "attempts: invalid Kubernetes settings: -1 is negative"},
	} {
		if err := tt.opts.Validate(); err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("Validate() = %v, want %q", err, tt.want)
		}
	}
}

// TestRetryWatchStalled: a watch whose answer never starts is bounded like any other read, and
// client-go, which retries a watch that timed out, does not repeat the attempts.
func TestRetryWatchStalled(t *testing.T) {
	addr, accepted := stalledListener(t)
	yes := true
	cfg, err := (Options{Host: "https://" + addr, Insecure: &yes, RequestTimeout: 200 * time.Millisecond, Attempts: 2}).RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = dyn.Resource(applications).Namespace("argocd").Watch(context.Background(), metav1.ListOptions{})
	var ue *UnreachableError
	if !errors.As(err, &ue) || ue.Attempts != 2 || accepted.Load() != 2 {
		t.Errorf("Watch() of a stalled server = %v after %d connections, want an *UnreachableError after 2 attempts", err, accepted.Load())
	}
	if took := time.Since(start); took > 10*(2*200*time.Millisecond+250*time.Millisecond) {
		t.Errorf("Watch() of a stalled server took %s, want about 2 × 200ms plus backoff", took)
	}
}

package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/retry"
)

// noRetryClient surfaces every injected fault: no oras-go retries, and no
// keep-alive, so net/http does not transparently replay an idempotent
// request whose reused connection was reset.
func noRetryClient() *http.Client {
	return &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
}

// retryClient is the retry-friendly recipe: oras-go's retry transport over a
// transport whose ResponseHeaderTimeout turns a hung request into a
// retryable timeout.
func retryClient() *http.Client {
	return &http.Client{Transport: retry.NewTransport(&http.Transport{
		Proxy:                 nil,
		ResponseHeaderTimeout: 500 * time.Millisecond,
	})}
}

// proxyOp is one oras-go call that makes exactly one HTTP request against an
// anonymous registry.
type proxyOp struct {
	line string // the request as FaultProxy.Log shows it, without status
	run  func(ctx context.Context, rep *remote.Repository) error
}

func proxyOps(repo string, desc ocispec.Descriptor) []proxyOp {
	return []proxyOp{
		{
			line: "HEAD /v2/" + repo + "/manifests/v1",
			run: func(ctx context.Context, rep *remote.Repository) error {
				got, err := rep.Resolve(ctx, "v1")
				if err == nil && got.Digest != desc.Digest {
					err = fmt.Errorf("resolved %v, want %v", got.Digest, desc.Digest)
				}
				return err
			},
		},
		{
			line: "GET /v2/" + repo + "/manifests/" + desc.Digest.String(),
			run: func(ctx context.Context, rep *remote.Repository) error {
				rc, err := rep.Fetch(ctx, desc)
				if err != nil {
					return err
				}
				defer rc.Close()
				_, err = content.ReadAll(rc, desc)
				return err
			},
		},
		{
			line: "GET /v2/" + repo + "/tags/list",
			run: func(ctx context.Context, rep *remote.Repository) error {
				return rep.Tags(ctx, "", func([]string) error { return nil })
			},
		},
	}
}

// settledLog waits until no request in p's log is pending and returns it.
func settledLog(t *testing.T, p *FaultProxy) []string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		log := p.Log()
		if !strings.Contains(strings.Join(log, "\n"), "-> pending") || time.Now().After(deadline) {
			return log
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestFaultProxyFailsNthRequest(t *testing.T) {
	r := StartRegistry(t, RegistryOptions{})
	const repo = "ferry/faults"
	desc := r.PushImage(t, repo, "v1", "faults")
	ops := proxyOps(repo, desc)

	modes := []struct {
		mode    FaultMode
		status  string
		isFault func(err error) bool
	}{
		{FaultStatus500, "500", func(err error) bool { return statusOf(err) == http.StatusInternalServerError }},
		{FaultStatus429, "429", func(err error) bool { return statusOf(err) == http.StatusTooManyRequests }},
		{FaultReset, "RESET", func(err error) bool {
			return statusOf(err) == 0 && errors.Is(err, syscall.ECONNRESET)
		}},
		{FaultTimeout, "TIMEOUT", func(err error) bool { return errors.Is(err, context.DeadlineExceeded) }},
	}
	type tc struct {
		name   string
		n      int
		mode   FaultMode
		status string
		fault  func(error) bool
	}
	var tests []tc
	for _, m := range modes {
		for n := 1; n <= len(ops); n++ {
			tests = append(tests, tc{fmt.Sprintf("%v/n=%d", m.mode, n), n, m.mode, m.status, m.isFault})
		}
	}
	tests = append(tests,
		tc{name: "n=0 never fails", n: 0, mode: FaultStatus500},
		tc{name: "n=-1 never fails", n: -1, mode: FaultReset},
		tc{name: "n beyond the last request", n: len(ops) + 1, mode: FaultStatus500},
	)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := StartFaultProxy(t, r.RawAddr, tt.n, tt.mode)
			rep := NewRepository(t, p.Addr, repo, auth.EmptyCredential, noRetryClient())
			var want []string
			for i, op := range ops {
				timeout := 30 * time.Second
				if i+1 == tt.n && tt.mode == FaultTimeout {
					timeout = 300 * time.Millisecond // the client gives up
				}
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				err := op.run(ctx, rep)
				cancel()
				if i+1 == tt.n {
					if err == nil || !tt.fault(err) {
						t.Errorf("request %d (%s) error = %v, want the %v fault", i+1, op.line, err, tt.mode)
					}
					want = append(want, op.line+" -> "+tt.status)
					continue
				}
				if err != nil {
					t.Errorf("request %d (%s) error = %v, want nil", i+1, op.line, err)
				}
				want = append(want, op.line+" -> 200")
			}
			if got := p.Requests(); got != len(ops) {
				t.Errorf("Requests() = %d, want %d", got, len(ops))
			}
			if got := settledLog(t, p); !reflect.DeepEqual(got, want) {
				t.Errorf("Log() = %q, want %q", got, want)
			}
		})
	}
}

func TestFaultProxyRetryingClientRecovers(t *testing.T) {
	r := StartRegistry(t, RegistryOptions{Auth: true})
	const repo = "ferry/retries"
	desc := r.PushImage(t, repo, "v1", "retries")
	ops := proxyOps(repo, desc)

	tests := []struct {
		mode   FaultMode
		status string
	}{
		{FaultStatus500, "500"},
		{FaultStatus429, "429"},
		{FaultReset, "RESET"},
		{FaultTimeout, "TIMEOUT"},
	}
	for _, tt := range tests {
		t.Run(tt.mode.String(), func(t *testing.T) {
			t.Parallel()
			// Request 1 is answered 401 (basic auth challenge); 2 carries
			// credentials; fail 3, the first request of the second op.
			p := StartFaultProxy(t, r.RawAddr, 3, tt.mode)
			rep := NewRepository(t, p.Addr, repo, r.Credential(), retryClient())
			for i, op := range ops {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				err := op.run(ctx, rep)
				cancel()
				if err != nil {
					t.Errorf("op %d (%s) error = %v, want nil (retried)", i+1, op.line, err)
				}
			}
			want := []string{
				ops[0].line + " -> 401",
				ops[0].line + " -> 200",
				ops[1].line + " -> " + tt.status,
				ops[1].line + " -> 200",
				ops[2].line + " -> 200",
			}
			if got := settledLog(t, p); !reflect.DeepEqual(got, want) {
				t.Errorf("Log() = %q, want %q", got, want)
			}
		})
	}
}

func TestFaultProxyForwardsUploads(t *testing.T) {
	r := StartRegistry(t, RegistryOptions{Auth: true})
	const repo = "ferry/uploads"
	big := make([]byte, 8<<20) // larger than any proxy buffer
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		n         int
		mode      FaultMode
		viaAddr   bool // chain in front of Registry.Addr (its counting proxy) instead of RawAddr
		client    *http.Client
		wantLines []string // prefixes of the log lines
	}{
		{
			name:   "no fault",
			client: noRetryClient(),
			wantLines: []string{
				"POST /v2/" + repo + "/blobs/uploads/ -> 401",
				"POST /v2/" + repo + "/blobs/uploads/ -> 202",
				"PUT /v2/" + repo + "/blobs/uploads/", // via the rewritten Location
			},
		},
		{
			name:    "chained in front of Registry.Addr",
			viaAddr: true,
			client:  noRetryClient(),
			wantLines: []string{
				"POST /v2/" + repo + "/blobs/uploads/ -> 401",
				"POST /v2/" + repo + "/blobs/uploads/ -> 202",
				"PUT /v2/" + repo + "/blobs/uploads/", // via the rewritten Location
			},
		},
		{
			name: "500 on the PUT is retried with the rewound body",
			n:    3, mode: FaultStatus500, client: retryClient(),
			wantLines: []string{
				"POST /v2/" + repo + "/blobs/uploads/ -> 401",
				"POST /v2/" + repo + "/blobs/uploads/ -> 202",
				"PUT /v2/" + repo + "/blobs/uploads/",
				"PUT /v2/" + repo + "/blobs/uploads/",
			},
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := append([]byte(fmt.Sprintf("%d", i)), big...)
			desc := content.NewDescriptorFromBytes("application/octet-stream", data)
			target := r.RawAddr
			if tt.viaAddr {
				target = r.Addr
			}
			before := r.Requests()
			p := StartFaultProxy(t, target, tt.n, tt.mode)
			rep := NewRepository(t, p.Addr, repo, r.Credential(), tt.client)
			if err := rep.Push(testContext(t), desc, bytes.NewReader(data)); err != nil {
				t.Fatalf("Push() through the proxy error = %v, want nil", err)
			}
			wantCounted := 0
			if tt.viaAddr {
				wantCounted = p.Requests()
			}
			if got := r.Requests() - before; got != wantCounted {
				t.Errorf("Registry.Requests() grew by %d, want %d", got, wantCounted)
			}
			log := settledLog(t, p)
			if len(log) != len(tt.wantLines) {
				t.Fatalf("Log() = %q, want %d lines", log, len(tt.wantLines))
			}
			for j, w := range tt.wantLines {
				if !strings.HasPrefix(log[j], w) {
					t.Errorf("Log()[%d] = %q, want prefix %q", j, log[j], w)
				}
			}
			if last := log[len(log)-1]; !strings.HasSuffix(last, "-> 201") {
				t.Errorf("last request = %q, want 201 Created", last)
			}
			// Read it back directly from the registry.
			rc, err := r.Repository(t, repo).Fetch(testContext(t), desc)
			if err != nil {
				t.Fatalf("fetch pushed blob: %v", err)
			}
			defer rc.Close()
			got, err := content.ReadAll(rc, desc)
			if err != nil || !bytes.Equal(got, data) {
				t.Errorf("blob read back = %d bytes, %v, want %d bytes, nil", len(got), err, len(data))
			}
		})
	}
}

func TestFaultProxyRewritesLocation(t *testing.T) {
	r := StartRegistry(t, RegistryOptions{})
	p := StartFaultProxy(t, r.RawAddr, 0, 0)
	client := noRetryClient()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := client.Post("http://"+p.Addr+"/v2/ferry/loc/blobs/uploads/", "application/octet-stream", nil)
	if err != nil {
		t.Fatalf("POST upload: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST upload = %d, want %d", resp.StatusCode, http.StatusAccepted)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatalf("Location %q: %v", resp.Header.Get("Location"), err)
	}
	if loc.Host != p.Addr {
		t.Errorf("Location host = %q, want the proxy's %q", loc.Host, p.Addr)
	}
	if !strings.HasPrefix(loc.Path, "/v2/ferry/loc/blobs/uploads/") {
		t.Errorf("Location path = %q, want an upload session", loc.Path)
	}
}

func TestFaultProxyCloseReleasesHeldRequest(t *testing.T) {
	r := StartRegistry(t, RegistryOptions{})
	p, err := newFaultProxy(r.RawAddr, 1, FaultTimeout)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		resp, err := noRetryClient().Get("http://" + p.Addr + "/v2/")
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for p.Requests() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if err := p.close(5 * time.Second); err != nil {
		t.Errorf("close() error = %v, want nil", err)
	}
	select {
	case err := <-errc:
		if err == nil {
			t.Errorf("held GET error = nil, want a connection error")
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("held GET still hanging 5s after close")
	}
	if got, want := p.Log(), []string{"GET /v2/ -> TIMEOUT"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Log() = %q, want %q", got, want)
	}
}

func TestNewFaultProxyRejectsBadArguments(t *testing.T) {
	tests := []struct {
		name   string
		target string
		n      int
		mode   FaultMode
	}{
		{name: "target without port", target: "127.0.0.1", n: 0},
		{name: "zero mode with n>0", target: "127.0.0.1:1", n: 1, mode: 0},
		{name: "unknown mode", target: "127.0.0.1:1", n: 2, mode: FaultTimeout + 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := newFaultProxy(tt.target, tt.n, tt.mode)
			if err == nil {
				_ = p.close(time.Second)
				t.Errorf("newFaultProxy(%q, %d, %v) error = nil, want an error", tt.target, tt.n, tt.mode)
			}
		})
	}
}

func TestFaultModeString(t *testing.T) {
	tests := []struct {
		mode FaultMode
		want string
	}{
		{FaultStatus500, "FaultStatus500"},
		{FaultStatus429, "FaultStatus429"},
		{FaultReset, "FaultReset"},
		{FaultTimeout, "FaultTimeout"},
		{FaultMode(42), "FaultMode(42)"},
	}
	for _, tt := range tests {
		if got := tt.mode.String(); got != tt.want {
			t.Errorf("FaultMode(%d).String() = %q, want %q", int(tt.mode), got, tt.want)
		}
	}
}

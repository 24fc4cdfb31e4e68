package testenv

import (
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// FaultMode is how a FaultProxy fails the request it was told to fail.
type FaultMode int

const (
	// FaultStatus500 answers 500 Internal Server Error with a registry-style
	// JSON error body (code UNKNOWN).
	FaultStatus500 FaultMode = iota + 1
	// FaultStatus429 answers 429 Too Many Requests with "Retry-After: 0" and a
	// registry-style JSON error body (code TOOMANYREQUESTS).
	FaultStatus429
	// FaultReset hijacks the connection and closes it abruptly (SO_LINGER 0,
	// so the client sees a TCP RST) without answering.
	FaultReset
	// FaultTimeout reads the whole request and never answers; the request
	// hangs until the client gives up or the proxy is closed.
	FaultTimeout
)

// String returns the mode's name, e.g. "FaultReset".
func (m FaultMode) String() string {
	switch m {
	case FaultStatus500:
		return "FaultStatus500"
	case FaultStatus429:
		return "FaultStatus429"
	case FaultReset:
		return "FaultReset"
	case FaultTimeout:
		return "FaultTimeout"
	}
	return "FaultMode(" + strconv.Itoa(int(m)) + ")"
}

// logStatus is what Log shows for a request failed with m.
func (m FaultMode) logStatus() string {
	switch m {
	case FaultStatus500:
		return "500"
	case FaultStatus429:
		return "429"
	case FaultReset:
		return "RESET"
	case FaultTimeout:
		return "TIMEOUT"
	}
	return m.String()
}

// FaultProxy is a reverse proxy on a loopback port that forwards requests to a
// target verbatim and fails one chosen request. With no fault configured it is
// a request counter.
type FaultProxy struct {
	// Addr is the proxy's "127.0.0.1:PORT"; point clients here.
	Addr string
	// Target is the "host:port" requests are forwarded to.
	Target string

	n    int
	mode FaultMode

	rp       *httputil.ReverseProxy
	tr       *http.Transport
	srv      *http.Server
	served   chan struct{}
	quit     chan struct{}
	inflight sync.WaitGroup

	mu      sync.Mutex
	closed  bool
	entries []string // "METHOD PATH", index = request number - 1
	status  []string // status per entry; "pending" while in flight
}

// StartFaultProxy starts a reverse proxy on a free loopback port in front of
// target ("127.0.0.1:PORT"). It forwards every request verbatim (the Host
// header is rewritten for the target, bodies are streamed, and Location
// headers pointing at the target are rewritten to point at the proxy) and
// fails request number n (1-based, counting every request) with mode; n <= 0
// means never fail. The proxy is closed in t.Cleanup, which also ends any
// request a FaultTimeout is holding.
func StartFaultProxy(t testing.TB, target string, n int, mode FaultMode) *FaultProxy {
	t.Helper()
	p, err := newFaultProxy(target, n, mode)
	if err != nil {
		t.Fatalf("testenv: start fault proxy: %v", err)
	}
	t.Cleanup(func() {
		if err := p.close(10 * time.Second); err != nil {
			t.Errorf("testenv: close fault proxy %s: %v", p.Addr, err)
		}
	})
	return p
}

func newFaultProxy(target string, n int, mode FaultMode) (*FaultProxy, error) {
	if _, _, err := net.SplitHostPort(target); err != nil {
		return nil, fmt.Errorf("invalid target %q: %w", target, err)
	}
	if n > 0 && (mode < FaultStatus500 || mode > FaultTimeout) {
		return nil, fmt.Errorf("invalid fault mode %v", mode)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	p := &FaultProxy{
		Addr:   ln.Addr().String(),
		Target: target,
		n:      n,
		mode:   mode,
		served: make(chan struct{}),
		quit:   make(chan struct{}),
		tr: &http.Transport{
			Proxy:                 nil, // never route loopback traffic through $HTTP_PROXY
			DialContext:           (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
			DisableCompression:    true, // forward bodies byte for byte
			MaxIdleConnsPerHost:   32,
			IdleConnTimeout:       30 * time.Second,
			ExpectContinueTimeout: time.Second,
		},
	}
	targetURL := &url.URL{Scheme: "http", Host: target}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(targetURL) // also rewrites the Host header to target
		},
		Transport:     p.tr,
		FlushInterval: -1, // stream responses as they arrive
		ModifyResponse: func(resp *http.Response) error {
			p.rewriteLocation(resp.Header)
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			w.WriteHeader(http.StatusBadGateway)
		},
		ErrorLog: log.New(io.Discard, "", 0),
	}
	p.srv = &http.Server{
		Handler:           http.HandlerFunc(p.serve),
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	go func() {
		defer close(p.served)
		_ = p.srv.Serve(ln)
	}()
	return p, nil
}

// rewriteLocation points Location headers that name the target at the proxy,
// so follow-up requests (e.g. blob upload sessions) come back through it.
func (p *FaultProxy) rewriteLocation(h http.Header) {
	loc := h.Get("Location")
	if loc == "" {
		return
	}
	u, err := url.Parse(loc)
	if err != nil || u.Host != p.Target {
		return
	}
	u.Host = p.Addr
	h.Set("Location", u.String())
}

// Requests returns the number of requests seen so far. It is safe for
// concurrent use.
func (p *FaultProxy) Requests() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.entries)
}

// Log returns one "METHOD PATH -> STATUS" line per request seen, in arrival
// order. STATUS is the HTTP status code (recorded before the response leaves
// the proxy), 500/429/RESET/TIMEOUT for the injected fault (recorded when the
// fault starts), or "pending" while the target has not answered yet.
func (p *FaultProxy) Log() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]string, len(p.entries))
	for i := range p.entries {
		out[i] = p.entries[i] + " -> " + p.status[i]
	}
	return out
}

func (p *FaultProxy) setStatus(seq int, status string) {
	p.mu.Lock()
	p.status[seq-1] = status
	p.mu.Unlock()
}

// serve counts the request, then fails or forwards it.
func (p *FaultProxy) serve(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		abort(w)
		return
	}
	p.inflight.Add(1)
	p.entries = append(p.entries, r.Method+" "+r.URL.Path)
	p.status = append(p.status, "pending")
	seq := len(p.entries)
	p.mu.Unlock()
	defer p.inflight.Done()

	if seq == p.n {
		// Recorded before the fault happens, so a client that has seen its
		// consequence also sees it in Log.
		p.setStatus(seq, p.mode.logStatus())
		p.fail(w, r, seq)
		return
	}
	// The status is recorded when the header is written, i.e. before the
	// client can have seen the response.
	rec := &statusRecorder{ResponseWriter: w, onStatus: func(code int) { p.setStatus(seq, strconv.Itoa(code)) }}
	p.rp.ServeHTTP(rec, r)
	if !rec.wrote {
		p.setStatus(seq, strconv.Itoa(http.StatusOK)) // what net/http sends for an empty handler
	}
}

func (p *FaultProxy) fail(w http.ResponseWriter, r *http.Request, seq int) {
	switch p.mode {
	case FaultStatus500, FaultStatus429:
		// Read the body so the client sees the status rather than a write
		// error on a connection the server gave up on.
		_, _ = io.Copy(io.Discard, r.Body)
		code, errCode := http.StatusInternalServerError, "UNKNOWN"
		if p.mode == FaultStatus429 {
			code, errCode = http.StatusTooManyRequests, "TOOMANYREQUESTS"
			w.Header().Set("Retry-After", "0")
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		fmt.Fprintf(w, `{"errors":[{"code":%q,"message":"testenv: injected %v on request %d"}]}`+"\n", errCode, p.mode, seq)
	case FaultReset:
		abort(w)
	case FaultTimeout:
		// Reading the whole body lets net/http notice when the client hangs up.
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-p.quit:
		}
		abort(w) // never let net/http write a response for us
	}
}

// abort closes the request's connection without answering, with a TCP RST.
func abort(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler) // closes the connection without a response
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// close stops accepting requests, releases requests held by FaultTimeout,
// closes all connections and waits for in-flight handlers.
func (p *FaultProxy) close(timeout time.Duration) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	close(p.quit)
	err := p.srv.Close()
	<-p.served
	done := make(chan struct{})
	go func() {
		p.inflight.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(timeout):
		err = errors.Join(err, fmt.Errorf("requests still in flight after %v", timeout))
	}
	p.tr.CloseIdleConnections()
	return err
}

// statusRecorder reports the final status code written through it.
type statusRecorder struct {
	http.ResponseWriter
	onStatus func(code int)
	wrote    bool
}

func (r *statusRecorder) WriteHeader(code int) {
	if !r.wrote && code >= 200 { // 1xx responses are not final
		r.wrote = true
		r.onStatus(code)
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if !r.wrote {
		r.wrote = true
		r.onStatus(http.StatusOK)
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush and Hijack.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// TCPProxy forwards TCP connections from a loopback port to a target byte for
// byte, and can be taken down and brought back on the same port: while it is
// down the port refuses connections, as a registry that is unreachable does,
// without stopping the target other clients use.
type TCPProxy struct {
	// Addr is the proxy's "127.0.0.1:PORT"; it stays the same across Down and Up.
	Addr string
	// Target is the "host:port" connections are forwarded to.
	Target string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// StartTCPProxy starts a TCPProxy in front of target, up; it is closed in
// t.Cleanup.
func StartTCPProxy(t testing.TB, target string) *TCPProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: start TCP proxy: %v", err)
	}
	p := &TCPProxy{Addr: ln.Addr().String(), Target: target, conns: map[net.Conn]struct{}{}}
	p.serve(ln)
	t.Cleanup(func() {
		p.Down()
		p.wg.Wait()
	})
	return p
}

// Down closes the listener and every forwarded connection: new connections
// to Addr are refused until Up.
func (p *TCPProxy) Down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
}

// Up listens on Addr again; it is a no-op while the proxy is up.
func (p *TCPProxy) Up() error {
	p.mu.Lock()
	up := p.ln != nil
	p.mu.Unlock()
	if up {
		return nil
	}
	ln, err := net.Listen("tcp", p.Addr)
	if err != nil {
		return fmt.Errorf("testenv: TCP proxy listen on %s again: %w", p.Addr, err)
	}
	p.serve(ln)
	return nil
}

func (p *TCPProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				p.forward(c)
			}()
		}
	}()
}

// forward copies c to a new connection to the target and back until either
// side closes.
func (p *TCPProxy) forward(c net.Conn) {
	up, err := net.DialTimeout("tcp", p.Target, 10*time.Second)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.ln == nil {
		p.mu.Unlock()
		c.Close()
		up.Close()
		return
	}
	p.conns[c], p.conns[up] = struct{}{}, struct{}{}
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
	<-done
	c.Close()
	up.Close()
	<-done
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}

// TLSFront puts a TLS-terminating reverse proxy in front of the plain-HTTP server at addr (a
// registry): a certificate for 127.0.0.1 from a CA of its own. It returns the proxy's
// "127.0.0.1:PORT" and the CA's PEM file, for clients that speak only HTTPS (OpenTofu's OCI
// client) or a test of HTTPS as users have it; give the CA through SSL_CERT_FILE.
func TLSFront(t testing.TB, addr string) (host, caFile string) {
	t.Helper()
	target := &url.URL{Scheme: "http", Host: addr}
	var front string
	ts := httptest.NewUnstartedServer(&httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
		},
		// A registry answers an upload with an absolute Location on its own address: point it
		// back at the front, as a TLS-terminating load balancer in front of a registry does.
		ModifyResponse: func(r *http.Response) error {
			if loc := r.Header.Get("Location"); loc != "" {
				if u, err := url.Parse(loc); err == nil && u.IsAbs() && u.Scheme == "http" {
					u.Scheme, u.Host = "https", front
					r.Header.Set("Location", u.String())
				}
			}
			return nil
		},
	})
	front = ts.Listener.Addr().String()
	ts.StartTLS()
	t.Cleanup(ts.Close)
	caFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(ts.URL, "https://"), caFile
}

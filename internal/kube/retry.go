package kube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// Defaults of [Options.RequestTimeout] and [Options.Attempts].
const (
	DefaultRequestTimeout = 30 * time.Second
	// DefaultAttempts is 5: with the backoff between them (0.25 s doubling, capped at 2 s) an
	// API server that is restarting, or a VPN or load balancer that is reconnecting, has about
	// 4 s plus the attempts' own time to come back, and an unreachable one is still reported
	// within a few minutes at the default request timeout instead of at the end of a 20-minute
	// wait.
	DefaultAttempts = 5

	firstBackoff = 250 * time.Millisecond
	maxBackoff   = 2 * time.Second
)

// UnreachableError is a request to the API server that failed on every attempt the transport
// made: the server could not be dialled (refused, unresolvable, no route) or did not answer
// within the request timeout. Err is the last attempt's error.
type UnreachableError struct {
	Host     string // host:port of the API server
	Attempts int
	Err      error
}

func (e *UnreachableError) Error() string {
	n := "attempts"
	if e.Attempts == 1 {
		n = "attempt"
	}
	return fmt.Sprintf("Kubernetes API server %s unreachable: %v (after %d %s)", e.Host, e.Err, e.Attempts, n)
}

// Unwrap returns the last attempt's error.
func (e *UnreachableError) Unwrap() error { return e.Err }

// Timeout is false and makes UnreachableError a net.Error, which apimachinery's IsTimeout finds
// before the timeout it wraps: client-go retries a watch that timed out ten more times, and would
// repeat every attempt this transport already made.
func (e *UnreachableError) Timeout() bool { return false }

// Temporary is false: the attempts are spent (net.Error).
func (e *UnreachableError) Temporary() bool { return false }

// attemptTimeoutError is an attempt that got no answer within the request timeout.
type attemptTimeoutError struct {
	timeout time.Duration
	err     error
}

func (e *attemptTimeoutError) Error() string {
	return "no answer within the request timeout of " + ShortDuration(e.timeout)
}

func (e *attemptTimeoutError) Unwrap() error { return e.err }

// Hint says, from the cause of err, what is wrong with the connection to the API server and what
// to check, or "" when err is not a connection failure. It names no flag or attribute; see
// [Options.Hint].
func Hint(err error) string { return Options{}.Hint(err) }

// Hint is [Hint] naming the settings of the server address and the request timeout as Names
// does (the CLI's --server and --request-timeout).
func (o Options) Hint(err error) string {
	address, raise := "check the server address in the kubeconfig", "raise the request timeout"
	if n, ok := o.Names["host"]; ok {
		address += " or " + n
	}
	if n, ok := o.Names["request_timeout"]; ok {
		raise = "raise " + n
	}
	host, cause := "", err
	var ue *UnreachableError
	var urlErr *url.Error
	var opErr *net.OpError
	switch {
	case errors.As(err, &ue):
		host, cause = ue.Host, ue.Err
	case errors.As(err, &urlErr):
		if u, perr := url.Parse(urlErr.URL); perr == nil {
			host = u.Host
		}
	case errors.As(err, &opErr) && opErr.Addr != nil:
		host = opErr.Addr.String()
	}
	hostname := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		hostname = h
	}
	var dnsErr *net.DNSError
	var to *attemptTimeoutError
	var ne net.Error
	switch {
	case errors.As(cause, &dnsErr):
		name := firstNonEmpty(dnsErr.Name, hostname)
		if dnsErr.IsNotFound {
			return fmt.Sprintf("cannot resolve %s: %s", name, address)
		}
		return fmt.Sprintf("cannot resolve %s (%s): check DNS, and %s", name, dnsErr.Err, strings.TrimPrefix(address, "check "))
	case errors.Is(cause, syscall.ECONNREFUSED):
		return fmt.Sprintf("nothing listens at %s: check the address and that the API server runs", host)
	case errors.Is(cause, syscall.EHOSTUNREACH), errors.Is(cause, syscall.ENETUNREACH):
		return fmt.Sprintf("no route to %s: check the network, VPN or firewall", host)
	case errors.As(cause, &to):
		return fmt.Sprintf("%s did not answer within the request timeout of %s: check the network, VPN or firewall, or %s", host, ShortDuration(to.timeout), raise)
	case errors.As(cause, &ne) && ne.Timeout(), errors.Is(cause, context.DeadlineExceeded):
		return fmt.Sprintf("%s did not answer in time: check the network, VPN or firewall", host)
	case errors.Is(cause, syscall.ECONNRESET), errors.Is(cause, io.EOF), errors.Is(cause, io.ErrUnexpectedEOF):
		return fmt.Sprintf("%s closed the connection: check that the API server (or the proxy or load balancer in front of it) runs", host)
	case ue != nil:
		return fmt.Sprintf("%s could not be reached: %s, and the network", host, address)
	}
	return ""
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// ShortDuration writes d as docs and flags write it: 20m, 1h30m, 1m30s, 30s, 300ms rather than
// time.Duration's 20m0s and 1h30m0s.
func ShortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// retryTransport bounds each request attempt by a timeout and makes more attempts when the API
// server certainly did not get the request (it could not be dialled), or, for reads, when it did
// not answer in time. Resets and EOFs are left to client-go, which retries a GET that meets one
// ten times a second apart; retrying them here too would multiply the attempts.
type retryTransport struct {
	next     http.RoundTripper
	timeout  time.Duration
	attempts int
}

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	stream := longRunning(req)
	backoff := firstBackoff
	var last error
	for n := 1; ; n++ {
		attempt := req
		if n > 1 {
			attempt = req.Clone(ctx)
			if req.Body != nil && req.Body != http.NoBody {
				body, err := req.GetBody()
				if err != nil {
					return nil, &UnreachableError{Host: req.URL.Host, Attempts: n - 1, Err: last}
				}
				attempt.Body = body
			}
		}
		resp, err := t.try(attempt, stream)
		if err == nil {
			return resp, nil
		}
		if ctx.Err() != nil {
			return nil, err // the caller gave up: its error, not ours
		}
		last = err
		if !t.retryable(req, err) {
			var to *attemptTimeoutError
			if errors.As(err, &to) || dialError(err) {
				return nil, &UnreachableError{Host: req.URL.Host, Attempts: n, Err: err}
			}
			return nil, err
		}
		if n >= t.attempts {
			return nil, &UnreachableError{Host: req.URL.Host, Attempts: n, Err: last}
		}
		if err := sleepCtx(ctx, backoff); err != nil {
			return nil, last
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// retryable says whether another attempt is safe and may help: the request never left (a dial
// failed) for any method; a read that timed out may be repeated, a write may already be applied.
func (t *retryTransport) retryable(req *http.Request, err error) bool {
	if dialError(err) {
		return req.GetBody != nil || req.Body == nil || req.Body == http.NoBody
	}
	var to *attemptTimeoutError
	return errors.As(err, &to) && (req.Method == http.MethodGet || req.Method == http.MethodHead)
}

// try makes one attempt under the request timeout. A non-streaming response keeps its deadline
// until its body is closed, so that a body that stalls fails too; a watch or other long-running
// request is bounded only until its response headers arrive, as its stream may rightly last.
func (t *retryTransport) try(req *http.Request, stream bool) (*http.Response, error) {
	ctx, cancel := context.WithCancelCause(req.Context())
	timedOut := fmt.Errorf("request timeout: %w", context.DeadlineExceeded)
	timer := time.AfterFunc(t.timeout, func() { cancel(timedOut) })
	resp, err := t.next.RoundTrip(req.WithContext(ctx))
	if err != nil {
		timer.Stop()
		if context.Cause(ctx) == timedOut {
			err = &attemptTimeoutError{timeout: t.timeout, err: err}
		}
		cancel(nil)
		return nil, err
	}
	if stream || resp.StatusCode == http.StatusSwitchingProtocols {
		timer.Stop()
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		// The body is the upgraded connection (an io.ReadWriteCloser its users assert); its
		// context ends with the caller's.
		return resp, nil
	}
	resp.Body = &cancelBody{ReadCloser: resp.Body, done: func() { timer.Stop(); cancel(nil) }}
	return resp, nil
}

// cancelBody ends an attempt's context when its body is closed.
type cancelBody struct {
	io.ReadCloser
	done func()
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.done()
	return err
}

// longRunning reports whether req is a watch or another request whose response streams for as
// long as it is wanted (logs followed, exec, attach, port forwarding).
func longRunning(req *http.Request) bool {
	q := req.URL.Query()
	if w := q.Get("watch"); w == "true" || w == "1" {
		return true
	}
	if f := q.Get("follow"); f == "true" || f == "1" {
		return true
	}
	path := strings.TrimSuffix(req.URL.Path, "/")
	switch path[strings.LastIndex(path, "/")+1:] {
	case "exec", "attach", "portforward":
		return true
	}
	return false
}

// dialError reports whether err is a failure to open a connection, so that the server never saw
// the request: refused, unresolvable, unroutable, or a dial that timed out.
func dialError(err error) bool {
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return true
	}
	var opErr *net.OpError
	return errors.As(err, &opErr) && opErr.Op == "dial"
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// WrappedRoundTripper lets client-go reach the transport underneath (to close idle connections).
func (t *retryTransport) WrappedRoundTripper() http.RoundTripper { return t.next }

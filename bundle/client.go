package bundle

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"sync/atomic"
	"time"

	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content/oci"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"

	"github.com/ferry-dev/terraform-provider-ferry/internal/version"
)

// ClientOptions configures registry access. The zero value uses HTTPS with verified certificates for
// every registry, the docker credential store (~/.docker/config.json and its credential helpers) and
// the default timeouts.
type ClientOptions struct {
	// PlainHTTP makes every registry, image registries included, be accessed over plain HTTP. It is
	// meant for tests against loopback registries; commands name the registries in
	// PlainHTTPRegistries instead. Default value: false.
	PlainHTTP bool
	// PlainHTTPRegistries lists the registry hosts (host[:port], as written in references) accessed
	// over plain HTTP. Every other registry is accessed over HTTPS.
	PlainHTTPRegistries []string
	// InsecureRegistries lists the registry hosts (host[:port], as written in references) whose TLS
	// certificate is not verified. Every other host, including the storage a registry redirects a
	// blob download to, is verified.
	InsecureRegistries []string
	// CAFile is a PEM file of extra certificate authorities to trust.
	CAFile string
	// Credentials returns the credential for a registry host. Nil means the docker credential
	// store. Use [StaticCredentials] to put fixed credentials in front of it.
	Credentials auth.CredentialFunc
	// CredentialSource says where Credentials finds the credential of a registry host, so that
	// authentication failures name it and say what to do ([CredentialError]). Nil with nil
	// Credentials means [DockerCredentialSource]; nil otherwise means failures name no source.
	CredentialSource func(host string) CredentialSource
	// RequestTimeout bounds the wait for a registry's response headers. If <= 0, 60s is used.
	RequestTimeout time.Duration
	// IdleTimeout bounds the wait for each read of a response body and each write of a request body:
	// a registry that sends (or takes) no byte of a manifest or blob for this long fails the attempt
	// like a dropped connection, which is retried and in the end [ErrUnreachable]. If <= 0, 30s is
	// used.
	IdleTimeout time.Duration
	// MaxAttempts bounds the attempts of each blob, manifest or tag operation when the registry
	// answers 5xx, 429 or 408, or drops, stalls or times out the connection. It is the only retry: the
	// transport itself never retries. If <= 0, 5 is used.
	MaxAttempts int
	// RetryBackoff is the first wait between attempts; it doubles each time, up to 5s. If <= 0,
	// 250ms is used.
	RetryBackoff time.Duration
	// UserAgent is sent on every request. Default "ferry/VERSION" (internal/version).
	UserAgent string
	// CacheDir, if set, keeps bundle manifests and configs on disk by digest, so [Inspect] of a
	// digest already seen costs one registry round trip (the resolve). Default: no cache.
	CacheDir string
}

// Client accesses registries and OCI layouts. It is safe for concurrent use and caches
// authentication tokens across repositories.
type Client struct {
	opts   ClientOptions
	http   *auth.Client
	source func(host string) CredentialSource // nil: unnamed
}

// NewClient returns a Client for opts.
func NewClient(opts ClientOptions) (*Client, error) {
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = 60 * time.Second
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 30 * time.Second
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 5
	}
	if opts.RetryBackoff <= 0 {
		opts.RetryBackoff = 250 * time.Millisecond
	}
	if opts.UserAgent == "" {
		opts.UserAgent = version.UserAgent("ferry")
	}
	for _, list := range []struct {
		field string
		hosts []string
	}{{"PlainHTTPRegistries", opts.PlainHTTPRegistries}, {"InsecureRegistries", opts.InsecureRegistries}} {
		for _, h := range list.hosts {
			if err := ValidateRegistryHost(h); err != nil {
				return nil, fmt.Errorf("%s: %w", list.field, err)
			}
		}
	}
	tlsConfig := &tls.Config{}
	if opts.CAFile != "" {
		pem, err := os.ReadFile(opts.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca file %s: no PEM certificates found", opts.CAFile)
		}
		tlsConfig.RootCAs = pool
	}
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.TLSClientConfig = tlsConfig
	base.ResponseHeaderTimeout = opts.RequestTimeout
	base.DialContext = (&net.Dialer{Timeout: 15 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	base.MaxIdleConnsPerHost = 16
	rt := &transport{verified: base, insecureHosts: opts.InsecureRegistries, idle: opts.IdleTimeout}
	if len(opts.InsecureRegistries) > 0 {
		rt.insecure = base.Clone()
		rt.insecure.TLSClientConfig = tlsConfig.Clone()
		rt.insecure.TLSClientConfig.InsecureSkipVerify = true //nolint:gosec // only for the hosts named in InsecureRegistries
	}
	cred, source := opts.Credentials, opts.CredentialSource
	if cred == nil {
		store, err := DockerCredentialStore()
		if err != nil {
			return nil, err
		}
		cred = credentials.Credential(store)
		if source == nil {
			source = DockerCredentialSource
		}
	}
	if source != nil {
		cred = sourcedCredentials(cred, source)
	}
	c := &auth.Client{
		// No retry transport: Client.retry is the only retry layer, so the attempts are the ones
		// configured and the error can say how many were made.
		Client:     &http.Client{Transport: rt},
		Cache:      auth.NewCache(),
		Credential: cred,
		Header:     http.Header{"User-Agent": {opts.UserAgent}},
	}
	return &Client{opts: opts, http: c, source: source}, nil
}

// DockerCredentialStore returns the credential store docker and oras use: ~/.docker/config.json
// (or $DOCKER_CONFIG) with its credential helpers, falling back to the platform's default helper.
func DockerCredentialStore() (credentials.Store, error) {
	store, err := credentials.NewStoreFromDocker(credentials.StoreOptions{AllowPlaintextPut: true, DetectDefaultNativeStore: true})
	if err != nil {
		return nil, fmt.Errorf("docker credential store: %w", err)
	}
	return store, nil
}

// StaticCredentials returns a credential function that answers with creds[host] when present and
// asks next otherwise (next may be nil).
func StaticCredentials(creds map[string]auth.Credential, next auth.CredentialFunc) auth.CredentialFunc {
	return func(ctx context.Context, hostport string) (auth.Credential, error) {
		if c, ok := creds[hostport]; ok {
			return c, nil
		}
		if next == nil {
			return auth.EmptyCredential, nil
		}
		return next(ctx, hostport)
	}
}

func (c *Client) plainHTTP(host string) bool {
	return c.opts.PlainHTTP || slices.Contains(c.opts.PlainHTTPRegistries, host)
}

// repository returns a remote repository handle for host/path.
func (c *Client) repository(host, path string) (*remote.Repository, error) {
	repo, err := remote.NewRepository(host + "/" + path)
	if err != nil {
		return nil, err
	}
	repo.Client = c.http
	repo.PlainHTTP = c.plainHTTP(host)
	return repo, nil
}

// Registry returns a remote registry handle for host, used by login.
func (c *Client) Registry(host string) (*remote.Registry, error) {
	reg, err := remote.NewRegistry(host)
	if err != nil {
		return nil, fmt.Errorf("registry %q: %w", host, ErrInvalidReference)
	}
	reg.Client = c.http
	reg.PlainHTTP = c.plainHTTP(host)
	return reg, nil
}

// Login checks cred against the registry host and stores it in store, as `docker login` does.
// Transient failures are retried like every other registry operation (the transport does not
// retry); a refused credential is not.
func (c *Client) Login(ctx context.Context, store credentials.Store, host string, cred auth.Credential) error {
	reg, err := c.Registry(host)
	if err != nil {
		return err
	}
	return c.retry(ctx, func() error { return credentials.Login(ctx, store, reg, cred) })
}

// target opens the storage a reference names. With create false a missing layout is
// ErrNotFound.
func (c *Client) target(ref Reference, create bool) (oras.Target, error) {
	if ref.IsLayout() {
		if !create {
			if _, err := os.Stat(ref.Layout); err != nil {
				return nil, fmt.Errorf("%s: %w", ref, ErrNotFound)
			}
		} else if err := checkLayoutDir(ref.Layout); err != nil {
			return nil, err
		}
		store, err := oci.New(ref.Layout)
		if err != nil {
			return nil, fmt.Errorf("open layout %s: %w", ref.Layout, err)
		}
		return store, nil
	}
	return c.repository(ref.Registry, ref.Repository)
}

// retry runs op until it succeeds, fails permanently or the attempts are used up. It is the only
// retry layer (the transport does not retry), so an error that followed a transient failure carries
// the number of attempts made: see [attemptsError].
func (c *Client) retry(ctx context.Context, op func() error) error {
	wait := c.opts.RetryBackoff
	for attempt := 1; ; attempt++ {
		err := op()
		if err == nil {
			return nil
		}
		transient := isTransient(ctx, err)
		if !transient && attempt == 1 {
			return err
		}
		if !transient || attempt >= c.opts.MaxAttempts {
			return &attemptsError{err: err, attempts: attempt}
		}
		select {
		case <-ctx.Done():
			return &attemptsError{err: errors.Join(err, ctx.Err()), attempts: attempt}
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// attemptsError is the last error of an operation that was attempted more than once, or given up
// after one attempt that failed transiently.
type attemptsError struct {
	err      error
	attempts int
}

func (e *attemptsError) Error() string { return e.err.Error() + e.suffix() }

func (e *attemptsError) Unwrap() error { return e.err }

func (e *attemptsError) suffix() string {
	if e.attempts == 1 {
		return " (after 1 attempt)"
	}
	return fmt.Sprintf(" (after %d attempts)", e.attempts)
}

// transport sends registry requests: through a verifying or, for InsecureRegistries, a
// non-verifying TLS transport, with every request and response body bounded by the idle timeout.
type transport struct {
	verified, insecure *http.Transport
	insecureHosts      []string
	idle               time.Duration
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	next := t.verified
	if t.insecure != nil && slices.Contains(t.insecureHosts, req.URL.Host) {
		next = t.insecure
	}
	// Cancelling the request's context is what ends a Read or Write blocked on a stalled
	// connection (http.Request: the context controls the whole exchange, body included).
	ctx, cancel := context.WithCancel(req.Context())
	req = req.WithContext(ctx)
	var upload *idleRequestBody
	if req.Body != nil && req.Body != http.NoBody {
		upload = &idleRequestBody{body: req.Body, timer: newIdleTimer(t.idle, cancel)}
		req.Body = upload
	}
	resp, err := next.RoundTrip(req)
	if upload != nil {
		upload.finish()
	}
	if err != nil {
		cancel()
		if upload != nil && upload.timer.fired() {
			return nil, upload.timer.err()
		}
		return nil, err
	}
	resp.Body = &idleResponseBody{body: resp.Body, timer: newIdleTimer(t.idle, cancel), cancel: cancel}
	return resp, nil
}

// idleTimer cancels an exchange when it makes no progress for the idle timeout.
type idleTimer struct {
	idle  time.Duration
	t     *time.Timer
	stall atomic.Bool
}

func newIdleTimer(idle time.Duration, cancel context.CancelFunc) *idleTimer {
	it := &idleTimer{idle: idle}
	it.t = time.AfterFunc(idle, func() {
		it.stall.Store(true)
		cancel()
	})
	it.t.Stop()
	return it
}

func (it *idleTimer) arm()        { it.t.Reset(it.idle) }
func (it *idleTimer) disarm()     { it.t.Stop() }
func (it *idleTimer) fired() bool { return it.stall.Load() }
func (it *idleTimer) err() error  { return &StallError{Idle: it.idle} }

// idleResponseBody fails a Read that gets no byte for the idle timeout.
type idleResponseBody struct {
	body   io.ReadCloser
	timer  *idleTimer
	cancel context.CancelFunc
}

func (b *idleResponseBody) Read(p []byte) (int, error) {
	b.timer.arm()
	n, err := b.body.Read(p)
	b.timer.disarm()
	if b.timer.fired() {
		return n, b.timer.err()
	}
	return n, err
}

func (b *idleResponseBody) Close() error {
	err := b.body.Close()
	b.cancel()
	return err
}

// idleRequestBody fails an upload that the connection takes no byte of for the idle timeout: the
// timer runs from one Read to the next, while the transport writes what the last one returned.
type idleRequestBody struct {
	body  io.ReadCloser
	timer *idleTimer
	done  atomic.Bool // the exchange is over: reads no longer arm the timer
}

func (b *idleRequestBody) Read(p []byte) (int, error) {
	b.timer.disarm()
	if b.timer.fired() {
		return 0, b.timer.err()
	}
	n, err := b.body.Read(p)
	if err == nil && !b.done.Load() {
		b.timer.arm()
		if b.done.Load() { // finish ran meanwhile
			b.timer.disarm()
		}
	}
	return n, err
}

func (b *idleRequestBody) Close() error { return b.body.Close() }

// finish stops the timer once the transport has an answer (or gave up).
func (b *idleRequestBody) finish() {
	b.done.Store(true)
	b.timer.disarm()
}

// StallError is returned when a registry sends or takes no byte of a request or response for the
// idle timeout ([ClientOptions.IdleTimeout]). Like a dropped connection it is retried, and in the end
// classified as [ErrUnreachable] or [ErrImageUnreachable].
type StallError struct {
	Idle time.Duration
}

func (e *StallError) Error() string {
	return fmt.Sprintf("the connection to the registry made no progress for %v (idle timeout)", e.Idle)
}

// Timeout reports true: a StallError is a [net.Error] timeout.
func (e *StallError) Timeout() bool { return true }

// Temporary reports true.
func (e *StallError) Temporary() bool { return true }

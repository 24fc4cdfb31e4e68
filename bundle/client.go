package bundle

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"time"

	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content/oci"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"
	"oras.land/oras-go/v2/registry/remote/retry"
)

// ClientOptions configures registry access. The zero value uses HTTPS, the docker credential store
// (~/.docker/config.json and its credential helpers) and the default timeouts.
type ClientOptions struct {
	// PlainHTTP makes every registry be accessed over plain HTTP. Default value: false.
	PlainHTTP bool
	// PlainHTTPRegistries lists registry hosts (host[:port]) accessed over plain HTTP.
	PlainHTTPRegistries []string
	// Insecure skips TLS certificate verification. Default value: false.
	Insecure bool
	// CAFile is a PEM file of extra certificate authorities to trust.
	CAFile string
	// Credentials returns the credential for a registry host. Nil means the docker credential
	// store. Use [StaticCredentials] to put fixed credentials in front of it.
	Credentials auth.CredentialFunc
	// RequestTimeout bounds the wait for a registry's response headers. If <= 0, 60s is used.
	RequestTimeout time.Duration
	// MaxAttempts bounds the attempts of each blob, manifest or tag operation when the registry
	// answers 5xx or 429, or drops or times out the connection. If <= 0, 5 is used.
	MaxAttempts int
	// RetryBackoff is the first wait between attempts; it doubles each time, up to 5s. If <= 0,
	// 250ms is used.
	RetryBackoff time.Duration
	// UserAgent is sent on every request. Default "ferry".
	UserAgent string
	// CacheDir, if set, keeps bundle manifests and configs on disk by digest, so [Inspect] of a
	// digest already seen costs one registry round trip (the resolve). Default: no cache.
	CacheDir string
}

// Client accesses registries and OCI layouts. It is safe for concurrent use and caches
// authentication tokens across repositories.
type Client struct {
	opts ClientOptions
	http *auth.Client
}

// NewClient returns a Client for opts.
func NewClient(opts ClientOptions) (*Client, error) {
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = 60 * time.Second
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 5
	}
	if opts.RetryBackoff <= 0 {
		opts.RetryBackoff = 250 * time.Millisecond
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "ferry"
	}
	tlsConfig := &tls.Config{InsecureSkipVerify: opts.Insecure} //nolint:gosec // opt-in --insecure
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
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = tlsConfig
	transport.ResponseHeaderTimeout = opts.RequestTimeout
	transport.DialContext = (&net.Dialer{Timeout: 15 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	transport.MaxIdleConnsPerHost = 16
	cred := opts.Credentials
	if cred == nil {
		store, err := DockerCredentialStore()
		if err != nil {
			return nil, err
		}
		cred = credentials.Credential(store)
	}
	c := &auth.Client{
		Client:     &http.Client{Transport: retry.NewTransport(transport)},
		Cache:      auth.NewCache(),
		Credential: cred,
		Header:     http.Header{"User-Agent": {opts.UserAgent}},
	}
	return &Client{opts: opts, http: c}, nil
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

// target opens the storage a reference names. With create false a missing layout is
// ErrNotFound.
func (c *Client) target(ref Reference, create bool) (oras.Target, error) {
	if ref.IsLayout() {
		if !create {
			if _, err := os.Stat(ref.Layout); err != nil {
				return nil, fmt.Errorf("%s: %w", ref, ErrNotFound)
			}
		}
		store, err := oci.New(ref.Layout)
		if err != nil {
			return nil, fmt.Errorf("open layout %s: %w", ref.Layout, err)
		}
		return store, nil
	}
	return c.repository(ref.Registry, ref.Repository)
}

// retry runs op until it succeeds, fails permanently or the attempts are used up.
func (c *Client) retry(ctx context.Context, op func() error) error {
	wait := c.opts.RetryBackoff
	var err error
	for attempt := 1; ; attempt++ {
		if err = op(); err == nil || !isTransient(ctx, err) || attempt >= c.opts.MaxAttempts {
			return err
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/crypto/bcrypt"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/errcode"
	"oras.land/oras-go/v2/registry/remote/retry"
)

const (
	// registryStartTimeout bounds how long StartRegistry waits for GET /v2/.
	registryStartTimeout = 30 * time.Second
	// registryStopTimeout bounds how long cleanup waits for the killed process.
	registryStopTimeout = 10 * time.Second
	// registryStartAttempts is how often StartRegistry retries when the port
	// it picked was taken before the registry could bind it.
	registryStartAttempts = 5
	// helperTimeout bounds each helper call (push, resolve, list).
	helperTimeout = 2 * time.Minute
)

// RegistryOptions configures StartRegistry.
type RegistryOptions struct {
	// Auth enables htpasswd basic auth with a generated user and password
	// (Registry.Username, Registry.Password).
	Auth bool
}

// Registry is a running CNCF Distribution v3 registry serving plain HTTP on
// loopback, fronted by a counting proxy.
type Registry struct {
	// Addr is "127.0.0.1:PORT" of the counting proxy in front of the
	// registry; point the code under test here so Requests sees its traffic.
	Addr string
	// RawAddr is "127.0.0.1:PORT" of the registry process itself. The helper
	// methods (Repository, PushImage, ListTags, ...) use it so they do not
	// disturb Requests.
	RawAddr string
	// Username is the htpasswd user; empty unless RegistryOptions.Auth.
	Username string
	// Password is Username's password; empty unless RegistryOptions.Auth.
	Password string
	// Dir is the registry's working directory (config.yml, htpasswd,
	// registry.log and the storage root under storage/).
	Dir string

	proc    *proc
	counter *FaultProxy
	logPath string
	client  *auth.Client // shared by the helpers, so the auth challenge is answered once
}

// StartRegistry starts CNCF Distribution v3 (the pinned "registry" tool) as a
// child process on a free loopback port, with a temporary filesystem storage
// root and a generated config.yml: plain HTTP, storage.delete enabled, no
// redis, no cache, log level warn, manifest validation disabled (OCI 1.1
// artifacts with custom config media types, artifactType and subject are
// accepted; indexes need not be complete). It waits until GET /v2/ answers
// (401 counts as up) and registers a t.Cleanup that kills the process group
// and waits for the process to exit. The registry's log is written to
// Dir/registry.log and dumped with t.Logf if the test failed.
func StartRegistry(t testing.TB, opts RegistryOptions) *Registry {
	t.Helper()
	SkipShort(t, "a registry")
	// TempDir first: its removal must run after the kill cleanup below.
	r, err := startRegistry(t.TempDir(), opts, launchMode{})
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() {
		early := r.proc.exitedEarly()
		if err := r.Stop(); err != nil {
			t.Errorf("testenv: stop registry: %v", err)
		}
		if early {
			t.Errorf("testenv: registry %s exited before the test ended: %v", r.RawAddr, r.proc.err)
		}
		if t.Failed() {
			t.Logf("testenv: registry log (%s):\n%s", r.logPath, readLog(r.logPath))
		}
	})
	// Registered after the registry's cleanup, so it is closed first.
	r.counter = StartFaultProxy(t, r.RawAddr, 0, 0)
	r.Addr = r.counter.Addr
	return r
}

// startRegistry is StartRegistry without a testing.TB and without the
// counting proxy (Addr is RawAddr): it starts the registry in dir; on error
// nothing is left running.
func startRegistry(dir string, opts RegistryOptions, mode launchMode) (*Registry, error) {
	bin, err := Tool("registry")
	if err != nil {
		return nil, err
	}
	r := &Registry{Dir: dir}
	r.logPath = filepath.Join(r.Dir, "registry.log")
	storage := filepath.Join(r.Dir, "storage")
	if err := os.MkdirAll(storage, 0o755); err != nil {
		return nil, fmt.Errorf("create registry storage: %w", err)
	}
	var htpasswd string
	if opts.Auth {
		r.Username = "ferry"
		r.Password = randomHex(16)
		htpasswd = filepath.Join(r.Dir, "htpasswd")
		if err := writeHtpasswd(htpasswd, r.Username, r.Password); err != nil {
			return nil, err
		}
	}
	logFile, err := os.OpenFile(r.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create registry log: %w", err)
	}
	defer logFile.Close() // the child keeps its own descriptor

	env := append(filterEnvPrefix(os.Environ(), "REGISTRY_", "OTEL_"),
		"OTEL_TRACES_EXPORTER=none", "OTEL_METRICS_EXPORTER=none", "OTEL_LOGS_EXPORTER=none", "OTEL_SDK_DISABLED=true")

	var lastErr error
	for attempt := 1; attempt <= registryStartAttempts && r.proc == nil; attempt++ {
		addr, err := pickAddr()
		if err != nil {
			return nil, err
		}
		config := filepath.Join(r.Dir, "config.yml")
		if err := os.WriteFile(config, []byte(registryConfig(addr, storage, htpasswd)), 0o644); err != nil {
			return nil, fmt.Errorf("write registry config: %w", err)
		}
		fmt.Fprintf(logFile, "--- testenv: starting registry on %s (attempt %d)\n", addr, attempt)
		logOffset := fileSize(r.logPath)
		p, err := launch(procSpec{name: "registry " + addr, path: bin, args: []string{"serve", config},
			env: env, dir: r.Dir, log: logFile, mode: mode})
		if err != nil {
			return nil, err
		}
		err = waitRegistryUp(p, addr, r.logPath, logOffset)
		if err == nil {
			r.proc, r.RawAddr = p, addr
			break
		}
		lastErr = err
		if stopErr := p.stop(registryStopTimeout); stopErr != nil {
			return nil, errors.Join(err, stopErr)
		}
		if !errors.Is(err, errPortTaken) {
			break
		}
	}
	if r.proc == nil {
		return nil, fmt.Errorf("registry did not start: %w\n%s", lastErr, readLog(r.logPath))
	}
	r.Addr = r.RawAddr
	r.client = newAuthClient(r.Credential(), nil)
	return r, nil
}

// shutdown stops the registry and closes its counting proxy, if any.
func (r *Registry) shutdown() error {
	err := r.Stop()
	if r.counter != nil {
		err = errors.Join(err, r.counter.close(10*time.Second))
	}
	return err
}

// Stop kills the registry process (and its process group) and waits for it
// to exit; later requests to Addr fail with 502 Bad Gateway and requests to
// RawAddr are refused. It is idempotent and also runs in the test's cleanup.
func (r *Registry) Stop() error {
	return r.proc.stop(registryStopTimeout)
}

// PID returns the registry process's id.
func (r *Registry) PID() int { return r.proc.pid }

// Requests returns the number of HTTP requests that went through Addr so
// far; it is safe for concurrent use.
func (r *Registry) Requests() int {
	if r.counter == nil {
		return 0
	}
	return r.counter.Requests()
}

// RequestLog returns one "METHOD PATH -> STATUS" line per request that went
// through Addr, in arrival order.
func (r *Registry) RequestLog() []string {
	if r.counter == nil {
		return nil
	}
	return r.counter.Log()
}

// LogText returns the registry process's log so far.
func (r *Registry) LogText() string { return readLog(r.logPath) }

// Credential returns the registry's credential, auth.EmptyCredential when it
// runs without auth.
func (r *Registry) Credential() auth.Credential {
	if r.Username == "" {
		return auth.EmptyCredential
	}
	return auth.Credential{Username: r.Username, Password: r.Password}
}

// Repository returns an oras-go repository for repo in r over plain HTTP with
// the right credentials, talking to RawAddr (so it is not counted by
// Requests) through oras-go's default retrying client.
func (r *Registry) Repository(t testing.TB, repo string) *remote.Repository {
	t.Helper()
	return newRepository(t, r.RawAddr, repo, r.client)
}

// NewRepository returns an oras-go repository for addr/repo over plain HTTP
// that presents cred (auth.EmptyCredential for none) to whichever host it
// talks to. httpClient is the transport underneath oras-go's auth client; nil
// means retry.DefaultClient (oras-go's default: retries 5xx, 429, timeouts
// and connection resets with backoff). Pass a plain *http.Client to see
// injected faults surface as errors.
func NewRepository(t testing.TB, addr, repo string, cred auth.Credential, httpClient *http.Client) *remote.Repository {
	t.Helper()
	return newRepository(t, addr, repo, newAuthClient(cred, httpClient))
}

func newRepository(t testing.TB, addr, repo string, client *auth.Client) *remote.Repository {
	t.Helper()
	rep, err := remote.NewRepository(addr + "/" + repo)
	if err != nil {
		t.Fatalf("testenv: repository %s/%s: %v", addr, repo, err)
	}
	rep.PlainHTTP = true
	rep.Client = client
	return rep
}

// newAuthClient returns an oras-go auth client presenting cred to every host.
func newAuthClient(cred auth.Credential, httpClient *http.Client) *auth.Client {
	if httpClient == nil {
		httpClient = retry.DefaultClient
	}
	return &auth.Client{
		Client: httpClient,
		Cache:  auth.NewCache(),
		Credential: func(context.Context, string) (auth.Credential, error) {
			return cred, nil
		},
	}
}

// ListTags returns the tags of repo, sorted; nil when the repository does not
// exist. Other errors fail the test.
func (r *Registry) ListTags(t testing.TB, repo string) []string {
	t.Helper()
	ctx, cancel := helperContext()
	defer cancel()
	var tags []string
	err := r.Repository(t, repo).Tags(ctx, "", func(page []string) error {
		tags = append(tags, page...)
		return nil
	})
	if err != nil {
		if isNotFound(err) {
			return nil
		}
		t.Fatalf("testenv: list tags of %s: %v", repo, err)
	}
	sort.Strings(tags)
	return tags
}

// Resolve returns the descriptor that ref (a tag or digest) points at in
// repo, or an error wrapping errdef.ErrNotFound when there is none.
func (r *Registry) Resolve(t testing.TB, repo, ref string) (ocispec.Descriptor, error) {
	t.Helper()
	ctx, cancel := helperContext()
	defer cancel()
	desc, err := r.Repository(t, repo).Resolve(ctx, ref)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("testenv: resolve %s:%s: %w", repo, ref, err)
	}
	return desc, nil
}

func isNotFound(err error) bool {
	if errors.Is(err, errdef.ErrNotFound) {
		return true
	}
	var resp *errcode.ErrorResponse
	return errors.As(err, &resp) && resp.StatusCode == http.StatusNotFound
}

// helperContext bounds a helper call. It deliberately does not derive from
// t.Context(), which is cancelled before cleanups run.
func helperContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), helperTimeout)
}

// registryConfig renders config.yml. Keys follow
// distribution/v3 configuration/configuration.go.
func registryConfig(addr, storage, htpasswd string) string {
	var b strings.Builder
	q := strconv.Quote // JSON-style double quoting is valid YAML
	fmt.Fprintf(&b, `version: 0.1
log:
  level: warn
  formatter: text
  fields:
    service: registry
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
  redirect:
    disable: true
http:
  addr: %s
  secret: %s
  headers:
    X-Content-Type-Options: [nosniff]
validation:
  disabled: true
`, q(storage), q(addr), q(randomHex(16)))
	if htpasswd != "" {
		fmt.Fprintf(&b, `auth:
  htpasswd:
    realm: %s
    path: %s
`, q("ferry-testenv"), q(htpasswd))
	}
	return b.String()
}

// writeHtpasswd writes a one-user bcrypt htpasswd file (the only format
// distribution accepts). MinCost keeps the per-request check cheap.
func writeHtpasswd(path, user, password string) error {
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		return fmt.Errorf("hash htpasswd password: %w", err)
	}
	if err := os.WriteFile(path, []byte(user+":"+string(hash)+"\n"), 0o600); err != nil {
		return fmt.Errorf("write htpasswd: %w", err)
	}
	return nil
}

var errPortTaken = errors.New("port already in use")

// waitRegistryUp polls GET /v2/ until the registry answers 200 or 401 with
// the distribution API header, or the process exits. The process's output
// starts at logOffset in logPath.
func waitRegistryUp(p *proc, addr, logPath string, logOffset int64) error {
	client := &http.Client{
		Timeout:   2 * time.Second,
		Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
	}
	// Abandon an in-flight probe as soon as the process dies (e.g. it could
	// not bind and something else holds the port without answering).
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-p.exited:
			cancel()
		case <-ctx.Done():
		}
	}()
	deadline := time.Now().Add(registryStartTimeout)
	var lastErr error
	for {
		select {
		case <-p.exited:
			if strings.Contains(readLogFrom(logPath, logOffset), "address already in use") {
				return fmt.Errorf("registry on %s exited: %w", addr, errPortTaken)
			}
			if p.err == nil {
				return fmt.Errorf("registry on %s exited with status 0 during startup", addr)
			}
			return fmt.Errorf("registry on %s exited during startup: %w", addr, p.err)
		default:
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/v2/", nil)
		if err != nil {
			return fmt.Errorf("probe request: %w", err)
		}
		resp, err := client.Do(req)
		if err != nil {
			lastErr = err
		} else {
			resp.Body.Close()
			api := resp.Header.Get("Docker-Distribution-Api-Version")
			if (resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized) && api == "registry/2.0" {
				return nil
			}
			if api != "registry/2.0" {
				// Something else answers on the port we picked.
				return fmt.Errorf("%s answered GET /v2/ with %s but is not our registry: %w", addr, resp.Status, errPortTaken)
			}
			lastErr = fmt.Errorf("GET /v2/ answered %s", resp.Status)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("registry on %s not answering GET /v2/ after %v: %w", addr, registryStartTimeout, lastErr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pickAddr picks the registry's address; tests replace it to provoke the
// port-taken retry.
var pickAddr = freeLoopbackAddr

// freeLoopbackAddr returns a loopback "127.0.0.1:PORT" that was free a moment
// ago. The caller must cope with losing the race for it.
func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("pick a free port: %w", err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		return "", fmt.Errorf("release port %s: %w", addr, err)
	}
	return addr, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
	return hex.EncodeToString(b)
}

// readLogFrom returns the part of the log at path from offset on.
func readLogFrom(path string, offset int64) string {
	s := readLog(path)
	if offset > int64(len(s)) {
		return ""
	}
	return s[offset:]
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

func readLog(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	return string(bytes.TrimRight(b, "\n"))
}

// filterEnvPrefix returns env without variables whose names start with any
// of prefixes (the registry reads REGISTRY_* overrides from its environment).
func filterEnvPrefix(env []string, prefixes ...string) []string {
	out := make([]string, 0, len(env))
outer:
	for _, kv := range env {
		for _, p := range prefixes {
			if strings.HasPrefix(kv, p) {
				continue outer
			}
		}
		out = append(out, kv)
	}
	return out
}

package testenv

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Options selects the parts of an environment for Start, NewShared and Up.
type Options struct {
	// Registry starts a registry (StartRegistry).
	Registry bool
	// RegistryOptions configures it.
	RegistryOptions RegistryOptions
	// Cluster starts a Kubernetes control plane (StartCluster).
	Cluster bool
	// ClusterOptions configures it.
	ClusterOptions ClusterOptions
	// ArgoCD starts Argo CD (StartArgoCD) on the cluster, which it implies;
	// with Registry it also gets a repo-creds Secret for the registry.
	ArgoCD bool
	// ArgoCDOptions configures it.
	ArgoCDOptions ArgoCDOptions
	// Flux starts Flux's source-controller (StartFlux) on the cluster, which
	// it implies.
	Flux bool
	// FluxOptions configures it.
	FluxOptions FluxOptions
}

// Env is a started environment; the parts not asked for are nil.
type Env struct {
	// Registry is the registry; its Addr is the counting proxy in front of it.
	Registry *Registry
	// Cluster is the Kubernetes control plane.
	Cluster *Cluster
	// ArgoCD is Argo CD, configured for Cluster (and Registry).
	ArgoCD *ArgoCD
	// Flux is Flux's source-controller on Cluster.
	Flux *Flux
	// Dir holds every part's files: registry/, cluster/, argocd/, flux/.
	Dir string
}

// Start starts the parts of opts, as much in parallel as their dependencies
// allow (registry, cluster, and Redis plus the Argo CD repo-server together;
// then the Argo CD objects and the application controller), and registers a
// t.Cleanup that stops everything and waits for it. Process logs are dumped
// with t.Logf if the test failed.
func Start(t testing.TB, opts Options) *Env {
	t.Helper()
	SkipShort(t, "the test environment")
	e, err := startEnv(t.TempDir(), opts, launchMode{}, true)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() { e.finish(t) })
	return e
}

// SkipShort skips t under `go test -short` (`make unit`), which runs only
// the tests that need no part of the test environment; needs names the part
// t needs, e.g. "Terraform" or "the oras CLI". Start, Shared.Get and the
// Start* functions call it, so tests that start the environment skip
// without code of their own; a test that needs a part testenv does not
// start (Terraform, a pinned tool) calls it first.
func SkipShort(t testing.TB, needs string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("testenv: skipped under -short: needs %s (run it without -short, e.g. with make test)", needs)
	}
}

// startEnv starts the environment in dir; on error nothing is left running.
// counter puts the counting proxy in front of the registry (Registry.Addr).
func startEnv(dir string, opts Options, mode launchMode, counter bool) (e *Env, err error) {
	if opts.ArgoCD || opts.Flux {
		opts.Cluster = true
	}
	e = &Env{Dir: dir}
	defer func() {
		if err != nil {
			err = errors.Join(err, e.Stop())
		}
	}()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	part := func(name string, start func(dir string) error) {
		wg.Go(func() {
			sub := filepath.Join(dir, name)
			err := os.MkdirAll(sub, 0o755)
			if err == nil {
				err = start(sub)
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	if opts.Registry {
		part("registry", func(dir string) error {
			r, err := startRegistry(dir, opts.RegistryOptions, mode)
			if err != nil {
				return err
			}
			mu.Lock()
			e.Registry = r
			mu.Unlock()
			if counter {
				p, err := newFaultProxy(r.RawAddr, 0, 0)
				if err != nil {
					return fmt.Errorf("start the registry's counting proxy: %w", err)
				}
				r.counter, r.Addr = p, p.Addr
			}
			return nil
		})
	}
	if opts.Cluster {
		part("cluster", func(dir string) error {
			c, err := startCluster(dir, opts.ClusterOptions, mode)
			mu.Lock()
			e.Cluster = c // also on error, so Stop stops what was started
			mu.Unlock()
			return err
		})
	}
	if opts.ArgoCD {
		part("argocd", func(dir string) error {
			a, err := startArgoCDBackends(dir, opts.ArgoCDOptions, mode)
			mu.Lock()
			e.ArgoCD = a
			mu.Unlock()
			return err
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return e, errors.Join(errs...)
	}
	if opts.ArgoCD {
		if err := e.ArgoCD.finish(e.Cluster, e.Registry, opts.ArgoCDOptions, mode); err != nil {
			return e, err
		}
	}
	if opts.Flux {
		sub := filepath.Join(dir, "flux")
		if err := os.MkdirAll(sub, 0o755); err != nil {
			return e, err
		}
		f, err := startFlux(sub, e.Cluster, opts.FluxOptions, mode)
		e.Flux = f
		if err != nil {
			return e, err
		}
	}
	return e, nil
}

// Stop stops Flux, Argo CD, the cluster and the registry, in that order, and
// waits for their processes. It is idempotent.
func (e *Env) Stop() error {
	var errs []error
	if e.Flux != nil {
		errs = append(errs, e.Flux.Stop())
	}
	if e.ArgoCD != nil {
		errs = append(errs, e.ArgoCD.Stop())
	}
	if e.Cluster != nil {
		errs = append(errs, e.Cluster.Stop())
	}
	if e.Registry != nil {
		errs = append(errs, e.Registry.shutdown())
	}
	return errors.Join(errs...)
}

// procs returns every process of e with the directory of its log.
func (e *Env) procs() (ps []*proc, dirs []string) {
	if e.Registry != nil && e.Registry.proc != nil {
		ps, dirs = append(ps, e.Registry.proc), append(dirs, e.Registry.Dir)
	}
	if e.Cluster != nil {
		for _, p := range e.Cluster.procs {
			ps, dirs = append(ps, p), append(dirs, e.Cluster.Dir)
		}
	}
	if e.ArgoCD != nil {
		for _, p := range e.ArgoCD.procs {
			ps, dirs = append(ps, p), append(dirs, e.ArgoCD.Dir)
		}
	}
	if e.Flux != nil {
		for _, p := range e.Flux.procs {
			ps, dirs = append(ps, p), append(dirs, e.Flux.Dir)
		}
	}
	return ps, dirs
}

// exitedEarly describes the processes of e that died on their own.
func (e *Env) exitedEarly() []string {
	var out []string
	ps, _ := e.procs()
	for _, p := range ps {
		if p.exitedEarly() {
			out = append(out, fmt.Sprintf("%s (%v)", p.name, p.err))
		}
	}
	return out
}

// logTails returns the last lines of every process log of e.
func (e *Env) logTails(n int) string {
	var b strings.Builder
	ps, dirs := e.procs()
	for i, p := range ps {
		path := filepath.Join(dirs[i], p.name+".log")
		if strings.HasPrefix(p.name, "registry ") {
			path = filepath.Join(dirs[i], "registry.log")
		}
		fmt.Fprintf(&b, "--- %s (%s), last lines:\n%s\n", p.name, path, lastLines(readLog(path), n))
	}
	return b.String()
}

// finish is Start's cleanup.
func (e *Env) finish(t testing.TB) {
	t.Helper()
	early := e.exitedEarly()
	if err := e.Stop(); err != nil {
		t.Errorf("testenv: stop environment: %v", err)
	}
	if len(early) > 0 {
		t.Errorf("testenv: process(es) exited before the test ended: %s", strings.Join(early, ", "))
	}
	if t.Failed() {
		t.Logf("testenv: environment logs:\n%s", e.logTails(60))
	}
}

// mainRunning is set while Main runs the tests; Shared requires it.
var mainRunning atomic.Bool

// shared lists the Shared environments started in this process.
var shared struct {
	sync.Mutex
	list []*Shared
}

// Shared is an environment that every test of a package (test binary)
// shares: started by the first Get, stopped by Main after all tests. It
// makes the per-test cost of a real cluster and Argo CD close to zero;
// tests keep apart by using their own namespaces (Cluster.CreateNamespace),
// Application names and repositories. Declare one per package:
//
//	var env = testenv.NewShared(testenv.Options{Registry: true, ArgoCD: true})
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
//
//	func TestSync(t *testing.T) {
//		e := env.Get(t)
//		...
//	}
//
// Get fails the test unless TestMain runs the tests through Main, which
// guarantees that no shared process outlives the test binary (the
// processes are also killed by the kernel if the test binary dies).
type Shared struct {
	opts Options

	mu      sync.Mutex
	started bool
	env     *Env
	err     error
	dir     string
}

// NewShared returns a Shared environment for opts; nothing starts before
// the first Get.
func NewShared(opts Options) *Shared {
	return &Shared{opts: opts}
}

// Get returns the shared environment, starting it on the first call. A
// failed start fails this and every later Get. Get also fails the test when
// a process of the environment has died.
func (s *Shared) Get(t testing.TB) *Env {
	t.Helper()
	if !mainRunning.Load() {
		t.Fatalf("testenv: a Shared environment needs TestMain to run the tests with testenv.Main, " +
			"which stops it after the last test: func TestMain(m *testing.M) { testenv.Main(m) }")
	}
	SkipShort(t, "the test environment")
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started {
		s.started = true
		shared.Lock()
		shared.list = append(shared.list, s)
		shared.Unlock()
		sweepSharedDirs()
		s.dir, s.err = os.MkdirTemp("", fmt.Sprintf("%s%d-", sharedDirPrefix, os.Getpid()))
		if s.err == nil {
			start := time.Now()
			s.env, s.err = startEnv(s.dir, s.opts, launchMode{shared: true}, true)
			if s.err == nil {
				t.Logf("testenv: shared environment started in %.1fs (files in %s)", time.Since(start).Seconds(), s.dir)
			}
		}
	}
	if s.err != nil {
		t.Fatalf("testenv: shared environment: %v", s.err)
	}
	if early := s.env.exitedEarly(); len(early) > 0 {
		t.Fatalf("testenv: shared environment process(es) died: %s\n%s", strings.Join(early, ", "), s.env.logTails(40))
	}
	return s.env
}

// stop stops the environment and removes its files, except the process
// logs when keepLogs is set.
func (s *Shared) stop(keepLogs bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	if s.env != nil {
		err = s.env.Stop()
	}
	if s.dir != "" {
		if keepLogs {
			err = errors.Join(err, pruneToLogs(s.dir))
		} else {
			err = errors.Join(err, os.RemoveAll(s.dir))
		}
	}
	return err
}

// sharedDirPrefix starts the name of a Shared environment's directory in
// os.TempDir(), followed by the test binary's pid and "-".
const sharedDirPrefix = "ferry-testenv-shared-"

// sweepSharedDirs cleans up after test binaries that died without running
// Main's cleanup (e.g. killed by -timeout): the directories of their Shared
// environments are cut down to the process logs, and removed after a day.
// etcd alone preallocates 128 MB there.
func sweepSharedDirs() {
	entries, err := os.ReadDir(os.TempDir())
	if err != nil {
		return
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), sharedDirPrefix)
		if !ok || !e.IsDir() {
			continue
		}
		pidText, random, ok := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if !ok || random == "" || err != nil || pid == os.Getpid() {
			continue
		}
		if _, err := os.Stat(filepath.Join("/proc", pidText)); err == nil {
			continue // its test binary still runs
		}
		dir := filepath.Join(os.TempDir(), e.Name())
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > 24*time.Hour {
			_ = os.RemoveAll(dir)
			continue
		}
		_ = pruneToLogs(dir)
	}
}

// pruneToLogs removes everything in dir but the *.log files.
func pruneToLogs(dir string) error {
	var dirs []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // vanished or unreadable: nothing to keep
		}
		if d.IsDir() {
			dirs = append(dirs, path)
			return nil
		}
		if strings.HasSuffix(path, ".log") {
			return nil
		}
		return os.Remove(path)
	})
	for i := len(dirs) - 1; i > 0; i-- { // deepest first; keep dir itself
		_ = os.Remove(dirs[i]) // fails, as wanted, while a log is inside
	}
	if err != nil {
		return fmt.Errorf("prune %s to its logs: %w", dir, err)
	}
	return nil
}

// stopShared stops every Shared environment (see Main).
func stopShared(keepLogs bool) error {
	shared.Lock()
	list := append([]*Shared(nil), shared.list...)
	shared.list = nil
	shared.Unlock()
	var errs []error
	for _, s := range list {
		if err := s.stop(keepLogs); err != nil {
			errs = append(errs, err)
		}
		if keepLogs && s.dir != "" {
			fmt.Fprintf(os.Stderr, "testenv: the tests failed; the shared environment's logs are kept in %s\n", s.dir)
		}
	}
	return errors.Join(errs...)
}

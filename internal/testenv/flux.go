package testenv

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

const fluxStartTimeout = 2 * time.Minute

// FluxOptions configures StartFlux.
type FluxOptions struct {
	// Namespace, if set, is the only namespace the source-controller watches
	// (--watch-all-namespaces=false, RUNTIME_NAMESPACE); "" watches all.
	Namespace string
	// ExtraArgs are appended to the source-controller's command line.
	ExtraArgs []string
}

// Flux is Flux's source-controller running as a child process against a
// Cluster, with the source.toolkit.fluxcd.io CRDs (OCIRepository,
// GitRepository, HelmRepository, HelmChart, Bucket, ExternalArtifact) of the
// pinned version installed. There is no other Flux controller: drive it
// through source objects, e.g. an OCIRepository with spec.insecure for the
// plain-HTTP test registry, and read .status.artifact.
type Flux struct {
	// StorageAddr is the artifact server's "127.0.0.1:PORT"; the
	// .status.artifact.url of every source points at it.
	StorageAddr string
	// StoragePath is the directory the artifacts are stored in.
	StoragePath string
	// HealthAddr serves /healthz and /readyz, MetricsAddr /metrics.
	HealthAddr, MetricsAddr string
	// Dir holds the controller's files and source-controller.log.
	Dir string

	procs []*proc // source-controller
}

// StartFlux installs the source-controller CRDs of the pinned version (from
// the Go module cache) into c, starts the source-controller (no leader
// election, artifact storage in its directory served on a random loopback
// port, metrics and health on loopback, every namespace watched unless
// opts.Namespace) and waits until its /readyz answers and its artifact server
// listens. A t.Cleanup stops it; the objects in the cluster stay.
func StartFlux(t testing.TB, c *Cluster, opts FluxOptions) *Flux {
	t.Helper()
	SkipShort(t, "Flux's source-controller")
	f, err := startFlux(t.TempDir(), c, opts, launchMode{})
	if f != nil {
		t.Cleanup(func() { finish(t, "Flux", f.Dir, f.procs, f.Stop) })
	}
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return f
}

// startFlux starts the source-controller in dir. On error the returned Flux
// (nil if nothing started) holds what has to be stopped.
func startFlux(dir string, c *Cluster, opts FluxOptions, mode launchMode) (*Flux, error) {
	bin, err := Tool("source-controller")
	if err != nil {
		return nil, err
	}
	f := &Flux{Dir: dir, StoragePath: filepath.Join(dir, "storage")}
	for _, sub := range []string{"home", "tmp", "storage"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return nil, fmt.Errorf("create Flux directory: %w", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), fluxStartTimeout)
	defer cancel()
	if err := installFluxCRDs(ctx, c); err != nil {
		return nil, err
	}
	watchAll := "true"
	extraEnv := []string{
		"KUBECONFIG=" + c.Kubeconfig,
		"HOME=" + filepath.Join(dir, "home"),
		"TMPDIR=" + filepath.Join(dir, "tmp"),
		"DOCKER_CONFIG=" + filepath.Join(dir, "home", ".docker"),
	}
	if opts.Namespace != "" {
		watchAll = "false"
		extraEnv = append(extraEnv, "RUNTIME_NAMESPACE="+opts.Namespace)
	}
	storage := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	p, err := startComponent(component{
		name: "source-controller", bin: bin, dir: dir, mode: mode, timeout: fluxStartTimeout,
		// No registry credentials, metrics or storage settings from the
		// caller: everything comes from the command line.
		env: childEnv([]string{"KUBECONFIG=", "HOME=", "TMPDIR=", "DOCKER_CONFIG=", "RUNTIME_NAMESPACE=",
			"STORAGE_", "METRICS_ADDR=", "EVENTS_ADDR="}, extraEnv...),
		args: func() ([]string, error) {
			ports, err := freePorts(3)
			if err != nil {
				return nil, err
			}
			f.StorageAddr = fmt.Sprintf("127.0.0.1:%d", ports[0])
			f.MetricsAddr = fmt.Sprintf("127.0.0.1:%d", ports[1])
			f.HealthAddr = fmt.Sprintf("127.0.0.1:%d", ports[2])
			return append([]string{
				"--enable-leader-election=false",
				"--watch-all-namespaces=" + watchAll,
				"--storage-path", f.StoragePath,
				"--storage-addr", f.StorageAddr,
				"--storage-adv-addr", f.StorageAddr,
				"--metrics-addr", f.MetricsAddr,
				"--health-addr", f.HealthAddr,
				"--log-level", "info", "--log-encoding", "console",
			}, opts.ExtraArgs...), nil
		},
		ready: func(ctx context.Context) error {
			if err := httpProbe("http://"+f.HealthAddr+"/readyz", nil, "")(ctx); err != nil {
				return err
			}
			// The artifact server starts once the manager runs; any answer will do.
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+f.StorageAddr+"/", nil)
			if err != nil {
				return err
			}
			resp, err := storage.Do(req)
			if err != nil {
				return fmt.Errorf("artifact server: %w", err)
			}
			return resp.Body.Close()
		},
	})
	if err != nil {
		return nil, err
	}
	f.procs = append(f.procs, p)
	return f, nil
}

// Stop kills the source-controller and waits for it to exit. It is
// idempotent and also runs in the test's cleanup.
func (f *Flux) Stop() error { return stopAll(f.procs) }

// PIDs returns the source-controller's process id, once started.
func (f *Flux) PIDs() []int { return pids(f.procs) }

// LogText returns the source-controller's log so far.
func (f *Flux) LogText() string {
	return readLog(filepath.Join(f.Dir, "source-controller.log"))
}

// fluxCRDFiles caches the source-controller's CRD files (read once per process).
var fluxCRDFiles struct {
	sync.Mutex
	dir   string
	files []crdFile
}

// FluxCRDDir returns the directory holding the source.toolkit.fluxcd.io CRDs
// (config/crd/bases) of the pinned source-controller version in the Go module
// cache, downloading the module if needed (tools.sh crds-dir source-controller).
func FluxCRDDir() (string, error) {
	fluxCRDFiles.Lock()
	defer fluxCRDFiles.Unlock()
	return fluxCRDDirLocked()
}

func fluxCRDDirLocked() (string, error) {
	if fluxCRDFiles.dir != "" {
		return fluxCRDFiles.dir, nil
	}
	out, err := runToolsScript("crds-dir", "source-controller")
	if err != nil {
		return "", fmt.Errorf("testenv: locate the Flux CRDs: %w", err)
	}
	dir := strings.TrimSpace(out)
	if _, err := os.Stat(filepath.Join(dir, "source.toolkit.fluxcd.io_ocirepositories.yaml")); err != nil {
		return "", fmt.Errorf("testenv: locate the Flux CRDs: %w", err)
	}
	fluxCRDFiles.dir = dir
	return dir, nil
}

// loadFluxCRDs returns every CRD in FluxCRDDir, sorted by file name.
func loadFluxCRDs() ([]crdFile, error) {
	fluxCRDFiles.Lock()
	defer fluxCRDFiles.Unlock()
	if fluxCRDFiles.files != nil {
		return fluxCRDFiles.files, nil
	}
	dir, err := fluxCRDDirLocked()
	if err != nil {
		return nil, err
	}
	paths, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, fmt.Errorf("list Flux CRDs: %w", err)
	}
	sort.Strings(paths)
	files, err := readCRDFiles(paths)
	if err != nil {
		return nil, fmt.Errorf("read Flux CRD: %w", err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no CRDs in %s", dir)
	}
	fluxCRDFiles.files = files
	return files, nil
}

// installFluxCRDs creates every source-controller CRD in c (applying over an
// existing one: a shared cluster may have them already) and waits until all
// are established: the controller watches every kind it serves.
func installFluxCRDs(ctx context.Context, c *Cluster) error {
	crds, err := loadFluxCRDs()
	if err != nil {
		return err
	}
	return c.installCRDs(ctx, crds, func(string) bool { return true })
}

// SourceReady reports whether a Flux source (OCIRepository, GitRepository,
// ...) is Ready and its .status.artifact is written. The source-controller
// patches status conditions and the rest of the status in separate requests,
// so Ready=True alone can be read a moment before .status.artifact exists.
func SourceReady(o *unstructured.Unstructured) bool {
	if status, _ := ConditionStatus(o, "Ready"); status != "True" {
		return false
	}
	rev, _, _ := unstructured.NestedString(o.Object, "status", "artifact", "revision")
	u, _, _ := unstructured.NestedString(o.Object, "status", "artifact", "url")
	return rev != "" && u != ""
}

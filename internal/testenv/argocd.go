package testenv

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

const (
	// DefaultArgoCDNamespace is the control-plane namespace StartArgoCD uses
	// unless ArgoCDOptions.Namespace says otherwise.
	DefaultArgoCDNamespace = "argocd"
	// ArgoCDClusterName is the name (and Secret name) of the cluster Secret
	// that registers the test cluster's own API server with Argo CD; use it
	// as an Application's destination.name, or ArgoCD.ClusterServer as its
	// destination.server.
	ArgoCDClusterName = "in-cluster-loopback"

	argoCDStartTimeout = 2 * time.Minute
)

// ArgoCDOptions configures StartArgoCD.
type ArgoCDOptions struct {
	// Namespace is the control-plane namespace; "" means
	// DefaultArgoCDNamespace.
	Namespace string
	// ConfigData is merged into the argocd-cm ConfigMap, e.g. Lua health
	// checks under "resource.customizations.health.<group>_<kind>".
	ConfigData map[string]string
	// AppResync is the controller's --app-resync: how often every
	// Application is compared again without a trigger (with no jitter).
	// 0 means 10 s.
	AppResync time.Duration
	// RepoErrorGracePeriod is --repo-error-grace-period-seconds: how long
	// repo-server errors are hidden behind the last good state before they
	// become a ComparisonError. 0 means 5 s (upstream: 180 s).
	RepoErrorGracePeriod time.Duration
	// ExtraControllerArgs are appended to the application controller's
	// command line.
	ExtraControllerArgs []string
	// ExtraRepoServerArgs are appended to the repo-server's command line.
	ExtraRepoServerArgs []string
}

// ArgoCD is a running Argo CD control plane for a Cluster: Redis, the
// repo-server and the application controller as child processes, with the
// Application, AppProject and ApplicationSet CRDs installed, the settings
// ConfigMap, a permissive "default" AppProject, a cluster Secret for the
// cluster's own API server and, when a registry was given, a repo-creds
// Secret for it. There is no API server, UI or Dex: drive Argo CD through
// Application objects.
type ArgoCD struct {
	// Namespace is the control-plane namespace (Applications, AppProjects,
	// Secrets live here).
	Namespace string
	// ClusterServer is the destination.server Applications use to deploy
	// into the test cluster ("https://127.0.0.1:PORT", the Cluster's Host).
	ClusterServer string
	// ClusterName is the destination.name of the same cluster
	// (ArgoCDClusterName).
	ClusterName string
	// RepoURLPrefix is "oci://<registry Addr>", the prefix the repo-creds
	// Secret covers; "" when no registry was given.
	RepoURLPrefix string
	// RepoServerAddr is the repo-server's gRPC address, "127.0.0.1:PORT".
	RepoServerAddr string
	// RedisAddr is Redis's address, "127.0.0.1:PORT".
	RedisAddr string
	// RedisEmbedded reports whether Redis is the embedded one (see
	// RedisEnv) rather than redis-server.
	RedisEmbedded bool
	// Dir holds Argo CD's files and one <component>.log per process.
	Dir string

	cluster *Cluster
	procs   []*proc // redis, argocd-repo-server, argocd-application-controller
	askDir  string  // short directory for the repo-server's askpass socket, if Dir is too long
}

// StartArgoCD starts Argo CD for c: Redis on a random loopback port
// (no persistence), the repo-server and the application controller
// (one multi-call binary), after installing the
// Application, AppProject and ApplicationSet CRDs of the pinned Argo CD
// version from the Go module cache and creating the namespace, argocd-cm
// (label app.kubernetes.io/part-of: argocd, plus opts.ConfigData), the
// "default" AppProject (every repository, destination and cluster-scoped
// kind allowed), the cluster Secret ArgoCDClusterName (c's API server at
// c.Host with c's token, TLS verified with c.CAData) and, if reg is not nil,
// a repo-creds Secret for oci://<reg.Addr> (plain HTTP, with reg's
// credentials). It waits until the Application and AppProject CRDs are
// established and both Argo CD processes answer /healthz, and registers a
// t.Cleanup that stops them. (The ApplicationSet CRD, which nothing here
// uses, may still be being established when StartArgoCD returns; wait for
// it with c.WaitFor if a test needs it.) Redis is redis-server when it is
// on PATH, else the embedded Redis (see RedisEnv).
func StartArgoCD(t testing.TB, c *Cluster, reg *Registry, opts ArgoCDOptions) *ArgoCD {
	t.Helper()
	SkipShort(t, "Argo CD")
	a, err := startArgoCDBackends(t.TempDir(), opts, launchMode{})
	if err == nil {
		err = a.finish(c, reg, opts, launchMode{})
	}
	if a != nil {
		t.Cleanup(func() { finish(t, "Argo CD", a.Dir, a.procs, a.Stop) })
	}
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return a
}

// startArgoCDBackends starts the parts of Argo CD that need no cluster:
// Redis and the repo-server. On error nothing is left running; the returned
// ArgoCD is nil.
func startArgoCDBackends(dir string, opts ArgoCDOptions, mode launchMode) (a *ArgoCD, err error) {
	argoBin, err := Tool("argocd")
	if err != nil {
		return nil, err
	}
	// The repo-server execs kustomize and helm from PATH.
	var renderers []string
	for _, name := range []string{"kustomize", "helm"} {
		bin, err := Tool(name)
		if err != nil {
			return nil, err
		}
		renderers = append(renderers, filepath.Dir(bin))
	}
	a = &ArgoCD{Dir: dir, Namespace: opts.Namespace, ClusterName: ArgoCDClusterName}
	if a.Namespace == "" {
		a.Namespace = DefaultArgoCDNamespace
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, a.Stop())
			a = nil
		}
	}()
	// The askpass socket path must stay short (sun_path is 108 bytes).
	askSock := filepath.Join(dir, "askpass.sock")
	if len(askSock) > 100 {
		if a.askDir, err = os.MkdirTemp("", "ferry-argocd-"); err != nil {
			return a, fmt.Errorf("create askpass directory: %w", err)
		}
		askSock = filepath.Join(a.askDir, "askpass.sock")
	}
	for _, sub := range []string{"home", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return a, fmt.Errorf("create Argo CD directory: %w", err)
		}
	}

	p, addr, embedded, err := startRedis(dir, mode)
	if err != nil {
		return a, err
	}
	a.RedisAddr, a.RedisEmbedded = addr, embedded
	a.procs = append(a.procs, p)

	var metricsAddr string
	p, err = startComponent(component{
		name: "argocd-repo-server", bin: argoBin, dir: dir, mode: mode, timeout: argoCDStartTimeout,
		env: append(filterEnvPrefix(a.env("argocd-repo-server", "ARGOCD_ASK_PASS_SOCK="+askSock), "PATH="),
			"PATH="+strings.Join(append(renderers, os.Getenv("PATH")), string(os.PathListSeparator))),
		args: func() ([]string, error) {
			ports, err := freePorts(2)
			if err != nil {
				return nil, err
			}
			a.RepoServerAddr = fmt.Sprintf("127.0.0.1:%d", ports[0])
			metricsAddr = fmt.Sprintf("127.0.0.1:%d", ports[1])
			return append([]string{
				"--address", "127.0.0.1", "--port", strconv.Itoa(ports[0]),
				"--metrics-address", "127.0.0.1", "--metrics-port", strconv.Itoa(ports[1]),
				"--redis", a.RedisAddr,
				"--disable-tls", "--client-ca-path", "",
				"--loglevel", "info", "--logformat", "text",
			}, opts.ExtraRepoServerArgs...), nil
		},
		ready: func(ctx context.Context) error {
			return httpProbe("http://"+metricsAddr+"/healthz?full=true", nil, "")(ctx)
		},
	})
	if err != nil {
		return a, err
	}
	a.procs = append(a.procs, p)
	return a, nil
}

// env returns the environment of an Argo CD process playing role: its own
// HOME and TMPDIR, GPG off, and no ARGOCD_* settings inherited.
func (a *ArgoCD) env(role string, extra ...string) []string {
	return childEnv([]string{"ARGOCD_", "KUBECONFIG=", "HOME=", "TMPDIR="}, append([]string{
		"ARGOCD_BINARY_NAME=" + role,
		"ARGOCD_GPG_ENABLED=false",
		"HOME=" + filepath.Join(a.Dir, "home"),
		"TMPDIR=" + filepath.Join(a.Dir, "tmp"),
	}, extra...)...)
}

// finish installs Argo CD's objects into c and starts the application
// controller. On error the caller stops a.
func (a *ArgoCD) finish(c *Cluster, reg *Registry, opts ArgoCDOptions, mode launchMode) error {
	argoBin, err := Tool("argocd")
	if err != nil {
		return err
	}
	a.cluster = c
	a.ClusterServer = c.Host
	ctx, cancel := context.WithTimeout(context.Background(), argoCDStartTimeout)
	defer cancel()
	if err := a.installCRDs(ctx, c); err != nil {
		return err
	}
	objs, err := a.objects(c, reg, opts)
	if err != nil {
		return err
	}
	if _, err := c.applyObjects(ctx, objs); err != nil {
		return fmt.Errorf("install Argo CD settings: %w", err)
	}
	tracef("Argo CD settings applied")

	resync := opts.AppResync
	if resync <= 0 {
		resync = 10 * time.Second
	}
	grace := opts.RepoErrorGracePeriod
	if grace <= 0 {
		grace = 5 * time.Second
	}
	var metricsAddr string
	p, err := startComponent(component{
		name: "argocd-application-controller", bin: argoBin, dir: a.Dir, mode: mode, timeout: argoCDStartTimeout,
		env: a.env("argocd-application-controller"),
		args: func() ([]string, error) {
			ports, err := freePorts(1)
			if err != nil {
				return nil, err
			}
			metricsAddr = fmt.Sprintf("127.0.0.1:%d", ports[0])
			return append([]string{
				"--kubeconfig", c.Kubeconfig,
				"--namespace", a.Namespace,
				"--repo-server", a.RepoServerAddr, "--repo-server-plaintext",
				"--redis", a.RedisAddr,
				"--metrics-port", strconv.Itoa(ports[0]),
				"--app-resync", strconv.Itoa(max(1, int(resync/time.Second))),
				"--app-resync-jitter", "0",
				"--repo-error-grace-period-seconds", strconv.Itoa(max(1, int(grace/time.Second))),
				"--status-processors", "4", "--operation-processors", "4",
				"--loglevel", "info", "--logformat", "text",
			}, opts.ExtraControllerArgs...), nil
		},
		ready: func(ctx context.Context) error { return httpProbe("http://"+metricsAddr+"/healthz", nil, "")(ctx) },
	})
	if err != nil {
		return err
	}
	a.procs = append(a.procs, p)
	return nil
}

// argoCDCRDFiles caches the CRD files (read once per process).
var argoCDCRDFiles struct {
	sync.Mutex
	files []crdFile
}

// loadArgoCDCRDs returns the Argo CD CRDs from the module cache.
func loadArgoCDCRDs() ([]crdFile, error) {
	argoCDCRDFiles.Lock()
	defer argoCDCRDFiles.Unlock()
	if argoCDCRDFiles.files == nil {
		dir, err := ArgoCDCRDDir()
		if err != nil {
			return nil, err
		}
		var paths []string
		for _, f := range []string{"application-crd.yaml", "appproject-crd.yaml", "applicationset-crd.yaml"} {
			paths = append(paths, filepath.Join(dir, f))
		}
		files, err := readCRDFiles(paths)
		if err != nil {
			return nil, fmt.Errorf("read Argo CD CRD: %w", err)
		}
		argoCDCRDFiles.files = files
	}
	return argoCDCRDFiles.files, nil
}

// lazyCRDs are the CRDs installCRDs does not wait for: only the
// ApplicationSet controller (not run here) uses them, and establishing the
// 1.5 MB ApplicationSet schema costs the API server seconds of CPU.
var lazyCRDs = map[string]bool{"applicationsets.argoproj.io": true}

// installCRDs creates the Argo CD CRDs from the module cache and waits until
// those the application controller needs are established.
func (a *ArgoCD) installCRDs(ctx context.Context, c *Cluster) error {
	crds, err := loadArgoCDCRDs()
	if err != nil {
		return err
	}
	return c.installCRDs(ctx, crds, func(name string) bool { return !lazyCRDs[name] })
}

// objects returns the namespace, argocd-cm, the default AppProject, the
// cluster Secret and the repo-creds Secret.
func (a *ArgoCD) objects(c *Cluster, reg *Registry, opts ArgoCDOptions) ([]*unstructured.Unstructured, error) {
	ns := a.Namespace
	labels := map[string]any{"app.kubernetes.io/part-of": "argocd"}
	cm := map[string]any{}
	for k, v := range opts.ConfigData {
		cm[k] = v
	}
	clusterConfig, err := json.Marshal(map[string]any{
		"bearerToken": c.Token,
		"tlsClientConfig": map[string]any{
			"insecure": false,
			"caData":   base64.StdEncoding.EncodeToString(c.CAData),
		},
	})
	if err != nil {
		return nil, fmt.Errorf("encode cluster config: %w", err)
	}
	objs := []map[string]any{
		{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": ns}},
		{
			"apiVersion": "v1", "kind": "ConfigMap",
			"metadata": map[string]any{"name": "argocd-cm", "namespace": ns, "labels": labels},
			"data":     cm,
		},
		{
			"apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject",
			"metadata": map[string]any{"name": "default", "namespace": ns},
			"spec": map[string]any{
				"sourceRepos":              []any{"*"},
				"destinations":             []any{map[string]any{"server": "*", "namespace": "*"}},
				"clusterResourceWhitelist": []any{map[string]any{"group": "*", "kind": "*"}},
			},
		},
		{
			"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
			"metadata": map[string]any{
				"name": ArgoCDClusterName, "namespace": ns,
				"labels": map[string]any{"argocd.argoproj.io/secret-type": "cluster"},
			},
			"stringData": map[string]any{"name": ArgoCDClusterName, "server": c.Host, "config": string(clusterConfig)},
		},
	}
	if reg != nil {
		a.RepoURLPrefix = "oci://" + reg.Addr
		data := map[string]any{"type": "oci", "url": a.RepoURLPrefix, "insecureOCIForceHttp": "true"}
		if reg.Username != "" {
			data["username"] = reg.Username
			data["password"] = reg.Password
		}
		objs = append(objs, map[string]any{
			"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
			"metadata": map[string]any{
				"name": "repo-creds-testenv-registry", "namespace": ns,
				"labels": map[string]any{"argocd.argoproj.io/secret-type": "repo-creds"},
			},
			"stringData": data,
		})
	}
	out := make([]*unstructured.Unstructured, len(objs))
	for i, o := range objs {
		out[i] = &unstructured.Unstructured{Object: o}
	}
	return out, nil
}

// Stop kills the application controller, the repo-server and Redis and waits
// for them to exit. It is idempotent and also runs in the test's cleanup.
// The objects in the cluster stay.
func (a *ArgoCD) Stop() error {
	err := stopAll(a.procs)
	if a.askDir != "" {
		if rmErr := os.RemoveAll(a.askDir); rmErr != nil {
			err = errors.Join(err, fmt.Errorf("remove askpass directory: %w", rmErr))
		}
	}
	return err
}

// PIDs returns the process ids of Redis, the repo-server and the application
// controller (as far as they were started).
func (a *ArgoCD) PIDs() []int { return pids(a.procs) }

// LogText returns the log of component ("redis", "argocd-repo-server",
// "argocd-application-controller") so far.
func (a *ArgoCD) LogText(component string) string {
	return readLog(filepath.Join(a.Dir, component+".log"))
}

// Application returns the Application name in Namespace, or nil when there
// is none.
func (a *ArgoCD) Application(t testing.TB, name string) *unstructured.Unstructured {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), helperTimeout)
	defer cancel()
	app, err := a.cluster.Resource(t, "argoproj.io/v1alpha1", "Application").Namespace(a.Namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatalf("testenv: get Application %s: %v", name, err)
	}
	return app
}

// WaitApplication polls the Application name in Namespace until cond
// returns true (a missing Application is passed as nil) and returns it; after
// timeout it fails the test with the last state seen and the tail of the
// controller's log.
func (a *ArgoCD) WaitApplication(t testing.TB, name string, cond func(app *unstructured.Unstructured) bool, timeout time.Duration) *unstructured.Unstructured {
	t.Helper()
	app, err := a.cluster.waitFor(context.Background(), "argoproj.io/v1alpha1", "Application", a.Namespace, name, cond, timeout)
	if err != nil {
		t.Fatalf("testenv: %v\napplication controller log, last lines:\n%s", err,
			lastLines(a.LogText("argocd-application-controller"), 40))
	}
	return app
}

// RequestSync asks the controller to sync the Application name to revision
// ("" means its targetRevision) the way `argocd app sync` does: it waits until the Application has been reconciled and runs
// no operation, then writes .operation (syncOptions and retry copied from
// spec.syncPolicy, initiatedBy ferry-testenv, info "testenv-request" = id)
// and clears .status.operationState, at the resourceVersion it read. It
// returns id, which the controller echoes in
// status.operationState.operation.info.
func (a *ArgoCD) RequestSync(t testing.TB, name, revision string) (id string) {
	t.Helper()
	id = randomHex(8)
	res := a.cluster.Resource(t, "argoproj.io/v1alpha1", "Application").Namespace(a.Namespace)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		app := a.WaitApplication(t, name, func(app *unstructured.Unstructured) bool {
			if app == nil || app.GetDeletionTimestamp() != nil {
				return false
			}
			if op, _, _ := unstructured.NestedFieldNoCopy(app.Object, "operation"); op != nil {
				return false
			}
			phase, _, _ := unstructured.NestedString(app.Object, "status", "operationState", "phase")
			if phase == "Running" || phase == "Terminating" {
				return false
			}
			reconciled, _, _ := unstructured.NestedString(app.Object, "status", "reconciledAt")
			return reconciled != ""
		}, time.Until(deadline))
		sync := map[string]any{"revision": revision}
		if opts, ok, _ := unstructured.NestedSlice(app.Object, "spec", "syncPolicy", "syncOptions"); ok {
			sync["syncOptions"] = opts
		}
		op := map[string]any{
			"sync":        sync,
			"initiatedBy": map[string]any{"username": "ferry-testenv"},
			"info":        []any{map[string]any{"name": "testenv-request", "value": id}},
		}
		if retry, ok, _ := unstructured.NestedMap(app.Object, "spec", "syncPolicy", "retry"); ok {
			op["retry"] = retry
		}
		if err := unstructured.SetNestedField(app.Object, op, "operation"); err != nil {
			t.Fatalf("testenv: set operation: %v", err)
		}
		unstructured.RemoveNestedField(app.Object, "status", "operationState")
		ctx, cancel := context.WithTimeout(context.Background(), helperTimeout)
		_, err := res.Update(ctx, app, metav1.UpdateOptions{FieldManager: fieldManager})
		cancel()
		if err == nil {
			return id
		}
		if !apierrors.IsConflict(err) || time.Now().After(deadline) {
			t.Fatalf("testenv: request sync of Application %s: %v", name, err)
		}
	}
}

// conditionTrue reports whether obj has status.conditions[type=typ] with
// status "True".
func conditionTrue(obj *unstructured.Unstructured, typ string) bool {
	if obj == nil {
		return false
	}
	conds, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == typ && m["status"] == "True" {
			return true
		}
	}
	return false
}

// ConditionStatus returns the status ("True", "False", "Unknown") and reason
// of the condition typ in obj's status.conditions, or "" when there is none.
func ConditionStatus(obj *unstructured.Unstructured, typ string) (status, reason string) {
	if obj == nil {
		return "", ""
	}
	conds, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == typ {
			s, _ := m["status"].(string)
			r, _ := m["reason"].(string)
			return s, r
		}
	}
	return "", ""
}

package testenv

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

const (
	// etcdStartTimeout bounds how long StartCluster waits for etcd's /health.
	etcdStartTimeout = 60 * time.Second
	// apiServerStartTimeout bounds how long StartCluster waits for /readyz.
	apiServerStartTimeout = 2 * time.Minute
)

// DefaultControllers are the kube-controller-manager controllers a test
// cluster runs unless ClusterOptions.Controllers says otherwise: Deployments
// get ReplicaSets and Pods (which never run: there is no scheduler or
// kubelet, so a Deployment with progressDeadlineSeconds reaches
// ProgressDeadlineExceeded), foreground and background deletion work
// (garbage collector), and deleted namespaces are emptied and go away.
var DefaultControllers = []string{
	"deployment-controller",
	"replicaset-controller",
	"garbage-collector-controller",
	"namespace-controller",
}

// ClusterOptions configures StartCluster.
type ClusterOptions struct {
	// Controllers is kube-controller-manager's --controllers list; nil
	// means DefaultControllers.
	Controllers []string
	// NoControllerManager starts no kube-controller-manager at all:
	// objects are stored but nothing acts on them.
	NoControllerManager bool
	// SimulatedKubelet runs a stand-in kubelet (see runSimulatedKubelet):
	// one Ready Node named SimulatedNodeName on which every Pod is bound,
	// reported Running and ready, and deleted when asked. Without it Pods
	// are never scheduled and Deployments never become Available.
	SimulatedKubelet bool
	// SimulatedKubeletNoScheduler keeps the simulated kubelet from binding
	// Pods: it runs only those whose spec.nodeName already names its Node
	// (SimulatedNodeName), as a kubelet on a cluster without a scheduler.
	// Other Pods stay Pending, so tests can have Deployments that never
	// become ready next to Pods that run (or crash-loop) on the Node.
	SimulatedKubeletNoScheduler bool
	// ExtraAPIServerArgs are appended to kube-apiserver's command line.
	ExtraAPIServerArgs []string
	// ExtraControllerManagerArgs are appended to kube-controller-manager's
	// command line.
	ExtraControllerManagerArgs []string
}

// Cluster is a running Kubernetes control plane: etcd, kube-apiserver and
// (unless disabled) kube-controller-manager as child processes on loopback.
// There are no nodes: Pods are created but never scheduled.
type Cluster struct {
	// Host is the API server's URL, "https://127.0.0.1:PORT".
	Host string
	// Token is a bearer token of the user "ferry-admin" in the group
	// system:masters (cluster-admin).
	Token string
	// CAData is the PEM of the CA that signed the API server's serving
	// certificate; clients verify TLS with it.
	CAData []byte
	// Kubeconfig is the path of a kubeconfig file for Host, Token and CAData
	// (context "ferry-testenv", namespace "default").
	Kubeconfig string
	// EtcdEndpoint is etcd's client URL, "http://127.0.0.1:PORT".
	EtcdEndpoint string
	// Dir holds the cluster's files: etcd's data, the PKI, the token file,
	// the kubeconfig and one <component>.log per process.
	Dir string

	procs []*proc // etcd, kube-apiserver, kube-controller-manager

	mu        sync.Mutex
	resources map[string]resourceInfo // discovery cache, see resourceFor
	dyn       dynamic.Interface
}

// StartCluster starts etcd (own data directory, random loopback client and
// peer ports), kube-apiserver (random secure port on 127.0.0.1, generated
// serving CA and service-account keys, a static token in system:masters,
// RBAC, the ServiceAccount admission plugin disabled) and
// kube-controller-manager (ClusterOptions.Controllers, no leader election, no
// serving port). It waits until /readyz answers 200, writes a kubeconfig and
// registers a t.Cleanup that kills every process and waits for it. The
// processes' logs are in Dir and are dumped with t.Logf if the test failed.
// The binaries come from the tool cache (Tool); run `make tools` first.
func StartCluster(t testing.TB, opts ClusterOptions) *Cluster {
	t.Helper()
	SkipShort(t, "a Kubernetes control plane")
	c, err := startCluster(t.TempDir(), opts, launchMode{})
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() { finish(t, "cluster", c.Dir, c.procs, c.Stop) })
	return c
}

// startCluster is StartCluster without a testing.TB: it starts the cluster
// in dir, and on error leaves nothing running.
func startCluster(dir string, opts ClusterOptions, mode launchMode) (c *Cluster, err error) {
	etcdBin, err := Tool("etcd")
	if err != nil {
		return nil, err
	}
	apiBin, err := Tool("kube-apiserver")
	if err != nil {
		return nil, err
	}
	kcmBin, err := Tool("kube-controller-manager")
	if err != nil {
		return nil, err
	}
	c = &Cluster{Dir: dir, Token: randomHex(24)}
	defer func() {
		if err != nil {
			err = errors.Join(err, c.Stop())
		}
	}()
	pkiDir := filepath.Join(dir, "pki")
	if err := os.MkdirAll(pkiDir, 0o700); err != nil {
		return nil, fmt.Errorf("create cluster directory: %w", err)
	}
	pki, err := newClusterPKI(pkiDir)
	if err != nil {
		return nil, err
	}
	c.CAData = pki.caPEM
	tokenFile := filepath.Join(pkiDir, "tokens.csv")
	if err := os.WriteFile(tokenFile, []byte(c.Token+`,ferry-admin,ferry-admin,"system:masters"`+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("write token file: %w", err)
	}

	// etcd
	etcdData := filepath.Join(dir, "etcd")
	p, err := startComponent(component{
		name: "etcd", bin: etcdBin, dir: dir, mode: mode, timeout: etcdStartTimeout,
		env: childEnv([]string{"ETCD_"}),
		args: func() ([]string, error) {
			ports, err := freePorts(2)
			if err != nil {
				return nil, err
			}
			if err := os.RemoveAll(etcdData); err != nil {
				return nil, fmt.Errorf("clear etcd data: %w", err)
			}
			client := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
			peer := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
			c.EtcdEndpoint = client
			return []string{
				"--name", "default",
				"--data-dir", etcdData,
				"--listen-client-urls", client, "--advertise-client-urls", client,
				"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
				"--initial-cluster", "default=" + peer, "--initial-cluster-state", "new",
				"--unsafe-no-fsync", // the data dies with the test
				"--log-level", "warn",
			}, nil
		},
		ready: func(ctx context.Context) error { return httpProbe(c.EtcdEndpoint+"/health", nil, "")(ctx) },
	})
	if err != nil {
		return c, err
	}
	c.procs = append(c.procs, p)

	// kube-apiserver
	p, err = startComponent(component{
		name: "kube-apiserver", bin: apiBin, dir: dir, mode: mode, timeout: apiServerStartTimeout,
		env: childEnv(nil),
		args: func() ([]string, error) {
			ports, err := freePorts(1)
			if err != nil {
				return nil, err
			}
			c.Host = fmt.Sprintf("https://127.0.0.1:%d", ports[0])
			return append([]string{
				"--etcd-servers", c.EtcdEndpoint,
				"--secure-port", strconv.Itoa(ports[0]),
				"--bind-address", "127.0.0.1",
				"--advertise-address", "127.0.0.1",
				"--cert-dir", pkiDir,
				"--tls-cert-file", pki.certFile,
				"--tls-private-key-file", pki.keyFile,
				"--token-auth-file", tokenFile,
				"--authorization-mode", "RBAC",
				"--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
				"--service-account-key-file", pki.saPubFile,
				"--service-account-signing-key-file", pki.saKeyFile,
				"--service-cluster-ip-range", "10.0.0.0/24",
				"--disable-admission-plugins", "ServiceAccount",
				"--enable-priority-and-fairness=false",
				"--profiling=false",
				"--endpoint-reconciler-type", "none",
			}, opts.ExtraAPIServerArgs...), nil
		},
		ready: func(ctx context.Context) error { return httpProbe(c.Host+"/readyz", c.CAData, c.Token)(ctx) },
	})
	if err != nil {
		return c, err
	}
	c.procs = append(c.procs, p)

	c.Kubeconfig = filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(c.Kubeconfig, []byte(c.kubeconfigYAML()), 0o600); err != nil {
		return c, fmt.Errorf("write kubeconfig: %w", err)
	}

	// kube-controller-manager
	if opts.NoControllerManager {
		return c, nil
	}
	controllers := opts.Controllers
	if controllers == nil {
		controllers = DefaultControllers
	}
	p, err = startComponent(component{
		name: "kube-controller-manager", bin: kcmBin, dir: dir, mode: mode, timeout: time.Minute,
		env: childEnv([]string{"KUBECONFIG="}),
		args: func() ([]string, error) {
			return append([]string{
				"--kubeconfig", c.Kubeconfig,
				"--leader-elect=false",
				"--controllers", strings.Join(controllers, ","),
				"--secure-port=0",
				"--use-service-account-credentials=false",
				"--kube-api-qps", "100", "--kube-api-burst", "200",
			}, opts.ExtraControllerManagerArgs...), nil
		},
		// Nothing to probe without a serving port; the controllers start
		// within a second and tests wait for their effects anyway.
	})
	if err != nil {
		return c, err
	}
	c.procs = append(c.procs, p)
	if opts.SimulatedKubelet {
		p, err := startSimulatedKubelet(c, !opts.SimulatedKubeletNoScheduler, mode)
		if err != nil {
			return c, err
		}
		c.procs = append(c.procs, p)
	}
	return c, nil
}

// kubeconfigYAML renders the kubeconfig for Host, Token and CAData.
func (c *Cluster) kubeconfigYAML() string {
	return fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: ferry-testenv
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: ferry-admin
  user:
    token: %s
contexts:
- name: ferry-testenv
  context:
    cluster: ferry-testenv
    user: ferry-admin
    namespace: default
current-context: ferry-testenv
`, c.Host, base64.StdEncoding.EncodeToString(c.CAData), c.Token)
}

// Stop kills the cluster's processes (kube-controller-manager first, etcd
// last) and waits for them to exit. It is idempotent and also runs in the
// test's cleanup.
func (c *Cluster) Stop() error {
	return stopAll(c.procs)
}

// PIDs returns the process ids of etcd, kube-apiserver and
// kube-controller-manager (as far as they were started).
func (c *Cluster) PIDs() []int { return pids(c.procs) }

// LogText returns the log of component ("etcd", "kube-apiserver",
// "kube-controller-manager") so far.
func (c *Cluster) LogText(component string) string {
	return readLog(filepath.Join(c.Dir, component+".log"))
}

// RESTConfig returns a client-go configuration for the cluster as
// ferry-admin, verifying the serving certificate against CAData. Each call
// returns a new copy.
func (c *Cluster) RESTConfig() *rest.Config {
	return &rest.Config{
		Host:            c.Host,
		BearerToken:     c.Token,
		TLSClientConfig: rest.TLSClientConfig{CAData: append([]byte(nil), c.CAData...)},
		QPS:             100,
		Burst:           200,
		Timeout:         30 * time.Second,
	}
}

// Dynamic returns a dynamic client for the cluster (shared by every caller).
func (c *Cluster) Dynamic(t testing.TB) dynamic.Interface {
	t.Helper()
	dyn, err := c.dynamic()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return dyn
}

func (c *Cluster) dynamic() (dynamic.Interface, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dyn == nil {
		dyn, err := dynamic.NewForConfig(c.RESTConfig())
		if err != nil {
			return nil, fmt.Errorf("dynamic client: %w", err)
		}
		c.dyn = dyn
	}
	return c.dyn, nil
}

// stopAll stops procs in reverse start order and joins their errors.
func stopAll(procs []*proc) error {
	var errs []error
	for i := len(procs) - 1; i >= 0; i-- {
		if err := procs[i].stop(componentStopTimeout); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func pids(procs []*proc) []int {
	out := make([]int, len(procs))
	for i, p := range procs {
		out[i] = p.pid
	}
	return out
}

// finish is the cleanup of a started environment part: it reports processes
// that died before the test ended, stops everything, and dumps the logs in
// dir when the test failed.
func finish(t testing.TB, what, dir string, procs []*proc, stop func() error) {
	t.Helper()
	var early []string
	for _, p := range procs {
		if p.exitedEarly() {
			early = append(early, fmt.Sprintf("%s (%v)", p.name, p.err))
		}
	}
	if err := stop(); err != nil {
		t.Errorf("testenv: stop %s: %v", what, err)
	}
	if len(early) > 0 {
		t.Errorf("testenv: %s process(es) exited before the test ended: %s", what, strings.Join(early, ", "))
	}
	if t.Failed() {
		for _, p := range procs {
			path := filepath.Join(dir, p.name+".log")
			t.Logf("testenv: %s log (%s), last lines:\n%s", p.name, path, lastLines(readLog(path), 60))
		}
	}
}

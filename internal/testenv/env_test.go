package testenv_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"oras.land/oras-go/v2/registry/remote/auth"

	"github.com/ferry-dev/terraform-provider-ferry/bundle"
	"github.com/ferry-dev/terraform-provider-ferry/internal/testenv"
)

// env is the environment the tests of this file share (see testenv.Shared);
// TestMain (main_test.go) runs them through testenv.Main, which stops it.
var env = testenv.NewShared(testenv.Options{Registry: true, Cluster: true, ArgoCD: true})

var schemaNamespaces = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}

func str(obj *unstructured.Unstructured, fields ...string) string {
	if obj == nil {
		return ""
	}
	s, _, _ := unstructured.NestedString(obj.Object, fields...)
	return s
}

func TestClusterClients(t *testing.T) {
	c := env.Get(t).Cluster
	kubeconfig, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		t.Fatalf("BuildConfigFromFlags(%q) error = %v", c.Kubeconfig, err)
	}
	tests := []struct {
		name string
		cfg  *rest.Config
	}{
		{name: "RESTConfig", cfg: c.RESTConfig()},
		{name: "Kubeconfig", cfg: kubeconfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.cfg.Host != c.Host {
				t.Errorf("Host = %q, want %q", tt.cfg.Host, c.Host)
			}
			if !strings.HasPrefix(c.Host, "https://127.0.0.1:") {
				t.Errorf("Cluster.Host = %q, want https://127.0.0.1:PORT", c.Host)
			}
			// TLS is verified against CAData: no Insecure anywhere.
			if tt.cfg.Insecure {
				t.Errorf("Insecure = true, want TLS verified with CAData")
			}
			client, err := rest.HTTPClientFor(tt.cfg)
			if err != nil {
				t.Fatalf("HTTPClientFor() error = %v", err)
			}
			resp, err := client.Get(c.Host + "/version")
			if err != nil {
				t.Fatalf("GET /version error = %v", err)
			}
			defer resp.Body.Close()
			var v struct{ GitVersion, Major, Minor string }
			if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
				t.Fatalf("decode /version: %v", err)
			}
			if got, want := v.GitVersion+" "+v.Major+"."+v.Minor, "v1.34.4 1.34"; got != want {
				t.Errorf("GET /version = %q, want %q", got, want)
			}
			dyn, err := dynamic.NewForConfig(tt.cfg)
			if err != nil {
				t.Fatalf("dynamic.NewForConfig() error = %v", err)
			}
			list, err := dyn.Resource(schemaNamespaces).List(context.Background(), metav1.ListOptions{})
			if err != nil {
				t.Fatalf("list namespaces: %v", err)
			}
			var names []string
			for _, ns := range list.Items {
				names = append(names, ns.GetName())
			}
			if !strings.Contains(strings.Join(names, ","), "kube-system") {
				t.Errorf("namespaces = %v, want kube-system among them", names)
			}
		})
	}
	// Anonymous and wrong-token requests are not cluster-admin.
	anon := c.RESTConfig()
	anon.BearerToken = "wrong"
	client, err := rest.HTTPClientFor(anon)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Get(c.Host + "/api/v1/namespaces")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET namespaces with a wrong token = %d, want %d", resp.StatusCode, http.StatusUnauthorized)
	}
}

// TestDeploymentControllers proves the real kube-controller-manager acts:
// Deployments get ReplicaSets and Pods, and with no kubelet a Deployment
// with a progress deadline reaches ProgressDeadlineExceeded.
func TestDeploymentControllers(t *testing.T) {
	c := env.Get(t).Cluster
	ns := c.CreateNamespace(t, "deploy")
	tests := []struct {
		name       string
		replicas   int
		deadline   int // progressDeadlineSeconds; 0 leaves the default (600)
		wantReason string
		wait       time.Duration
	}{
		{name: "web", replicas: 2, wantReason: "NewReplicaSetAvailable|ReplicaSetUpdated", wait: 30 * time.Second},
		{name: "stuck", replicas: 1, deadline: 10, wantReason: "ProgressDeadlineExceeded", wait: 60 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			deadline := ""
			if tt.deadline > 0 {
				deadline = fmt.Sprintf("  progressDeadlineSeconds: %d\n", tt.deadline)
			}
			c.Apply(t, fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[1]s
  namespace: %[2]s
spec:
  replicas: %[3]d
%[4]s  selector:
    matchLabels: {app: %[1]s}
  template:
    metadata:
      labels: {app: %[1]s}
    spec:
      containers:
      - name: main
        image: registry.invalid/%[1]s:1
`, tt.name, ns, tt.replicas, deadline))
			start := time.Now()
			dep := c.WaitFor(t, "apps/v1", "Deployment", ns, tt.name, func(obj *unstructured.Unstructured) bool {
				_, reason := testenv.ConditionStatus(obj, "Progressing")
				return strings.Contains("|"+tt.wantReason+"|", "|"+reason+"|")
			}, tt.wait)
			status, reason := testenv.ConditionStatus(dep, "Progressing")
			t.Logf("Deployment %s: Progressing=%s %s after %v", tt.name, status, reason, time.Since(start).Round(time.Second))
			if tt.deadline > 0 && status != "False" {
				t.Errorf("Progressing status = %q, want False", status)
			}

			rsList, err := c.Resource(t, "apps/v1", "ReplicaSet").Namespace(ns).List(context.Background(),
				metav1.ListOptions{LabelSelector: "app=" + tt.name})
			if err != nil {
				t.Fatalf("list ReplicaSets: %v", err)
			}
			if got, want := len(rsList.Items), 1; got != want {
				t.Fatalf("ReplicaSets of %s = %d, want %d", tt.name, got, want)
			}
			c.WaitFor(t, "apps/v1", "ReplicaSet", ns, rsList.Items[0].GetName(), func(obj *unstructured.Unstructured) bool {
				n, _, _ := unstructured.NestedInt64(obj.Object, "status", "replicas")
				return n == int64(tt.replicas)
			}, 30*time.Second)
			pods, err := c.Resource(t, "v1", "Pod").Namespace(ns).List(context.Background(),
				metav1.ListOptions{LabelSelector: "app=" + tt.name})
			if err != nil {
				t.Fatalf("list Pods: %v", err)
			}
			if got := len(pods.Items); got != tt.replicas {
				t.Errorf("Pods of %s = %d, want %d", tt.name, got, tt.replicas)
			}
			for _, p := range pods.Items {
				if owner := p.GetOwnerReferences(); len(owner) != 1 || owner[0].Kind != "ReplicaSet" {
					t.Errorf("Pod %s owners = %v, want its ReplicaSet", p.GetName(), owner)
				}
			}
		})
	}
}

// TestSimulatedKubelet proves the stand-in kubelet runs Pods far enough for
// Deployments to become Available (so Argo CD reports them Healthy), and
// finishes their graceful deletion.
func TestSimulatedKubelet(t *testing.T) {
	t.Parallel()
	c := testenv.StartCluster(t, testenv.ClusterOptions{SimulatedKubelet: true})
	ns := c.CreateNamespace(t, "kubelet")
	c.Apply(t, apiDeployment(ns, "{app: api}", `      initContainers:
      - name: migrate
        image: registry.invalid/migrate:1
      containers:
      - name: main
        image: registry.invalid/api:1@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
        readinessProbe:
          httpGet: {path: /ready, port: 8080}
`))
	available := func(obj *unstructured.Unstructured) bool {
		if obj == nil {
			return false
		}
		status, _ := testenv.ConditionStatus(obj, "Available")
		ready, _, _ := unstructured.NestedInt64(obj.Object, "status", "readyReplicas")
		updated, _, _ := unstructured.NestedInt64(obj.Object, "status", "updatedReplicas")
		observed, _, _ := unstructured.NestedInt64(obj.Object, "status", "observedGeneration")
		return status == "True" && ready == 3 && updated == 3 && observed == obj.GetGeneration()
	}
	c.WaitFor(t, "apps/v1", "Deployment", ns, "api", available, 2*time.Minute)
	pods, err := c.Resource(t, "v1", "Pod").Namespace(ns).List(context.Background(), metav1.ListOptions{LabelSelector: "app=api"})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 3 {
		t.Fatalf("Pods = %d, want 3", len(pods.Items))
	}
	for _, p := range pods.Items {
		if got := str(&p, "spec", "nodeName"); got != testenv.SimulatedNodeName {
			t.Errorf("Pod %s nodeName = %q, want %q", p.GetName(), got, testenv.SimulatedNodeName)
		}
		if got := str(&p, "status", "phase"); got != "Running" {
			t.Errorf("Pod %s phase = %q, want Running", p.GetName(), got)
		}
		if status, _ := testenv.ConditionStatus(&p, "Ready"); status != "True" {
			t.Errorf("Pod %s Ready = %q, want True", p.GetName(), status)
		}
	}

	// A rolling update replaces every Pod: the old ones are deleted
	// gracefully and only go away because the kubelet confirms it.
	c.Apply(t, apiDeployment(ns, `{app: api, version: "2"}`, `      containers:
      - name: main
        image: registry.invalid/api:2
`))
	c.WaitFor(t, "apps/v1", "Deployment", ns, "api", func(obj *unstructured.Unstructured) bool {
		_, reason := testenv.ConditionStatus(obj, "Progressing")
		total, _, _ := unstructured.NestedInt64(obj.Object, "status", "replicas")
		return available(obj) && reason == "NewReplicaSetAvailable" && total == 3
	}, 2*time.Minute)
	for _, p := range pods.Items {
		c.WaitFor(t, "v1", "Pod", ns, p.GetName(), func(obj *unstructured.Unstructured) bool { return obj == nil }, 2*time.Minute)
	}
}

// TestSimulatedKubeletCrashLoop: without its scheduler part the kubelet runs only Pods bound to
// its Node, and a container whose command exits crash-loops there as on a real node: Running but
// not ready, waiting in CrashLoopBackOff, its restart count growing, its exit code recorded.
func TestSimulatedKubeletCrashLoop(t *testing.T) {
	t.Parallel()
	c := testenv.StartCluster(t, testenv.ClusterOptions{SimulatedKubelet: true, SimulatedKubeletNoScheduler: true})
	ns := c.CreateNamespace(t, "crash")
	c.Apply(t, strings.Replace(apiDeployment(ns, "{app: api}", fmt.Sprintf(`      nodeName: %s
      containers:
      - name: main
        image: registry.invalid/api:1
        command: ["sh", "-c", "exit 3"]
`, testenv.SimulatedNodeName)), "replicas: 3", "replicas: 1", 1))
	c.Apply(t, fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: unscheduled, namespace: %s}
spec:
  containers:
  - {name: main, image: registry.invalid/api:1}
`, ns))
	var crashed *unstructured.Unstructured
	deadline := time.Now().Add(time.Minute)
	for crashed == nil && time.Now().Before(deadline) {
		pods, err := c.Resource(t, "v1", "Pod").Namespace(ns).List(context.Background(), metav1.ListOptions{LabelSelector: "app=api"})
		if err != nil {
			t.Fatal(err)
		}
		for i, p := range pods.Items {
			statuses, _, _ := unstructured.NestedSlice(p.Object, "status", "containerStatuses")
			if len(statuses) == 1 {
				if n, _, _ := unstructured.NestedInt64(statuses[0].(map[string]any), "restartCount"); n >= 3 {
					crashed = &pods.Items[i]
				}
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	if crashed == nil {
		t.Fatal("no Pod of the crashing Deployment was restarted 3 times within a minute")
	}
	cs, _, _ := unstructured.NestedSlice(crashed.Object, "status", "containerStatuses")
	st := cs[0].(map[string]any)
	reason, _, _ := unstructured.NestedString(st, "state", "waiting", "reason")
	code, _, _ := unstructured.NestedInt64(st, "lastState", "terminated", "exitCode")
	ready, _, _ := unstructured.NestedBool(st, "ready")
	if reason != "CrashLoopBackOff" || code != 3 || ready || str(crashed, "status", "phase") != "Running" {
		t.Errorf("crashing container: waiting %q, exit code %d, ready %v, phase %q; want CrashLoopBackOff, 3, false, Running", reason, code, ready, str(crashed, "status", "phase"))
	}
	if status, _ := testenv.ConditionStatus(crashed, "Ready"); status != "False" {
		t.Errorf("crashing Pod Ready = %q, want False", status)
	}
	p, err := c.Resource(t, "v1", "Pod").Namespace(ns).Get(context.Background(), "unscheduled", metav1.GetOptions{})
	if err != nil || p == nil || str(p, "spec", "nodeName") != "" || str(p, "status", "phase") != "Pending" {
		t.Errorf("a Pod not bound to the Node was handled: %v", p)
	}
}

// apiDeployment is a Deployment "api" of 3 replicas with the given template labels and pod spec
// lines (indented for spec.template.spec).
func apiDeployment(ns, labels, podSpec string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
  namespace: %s
spec:
  replicas: 3
  selector:
    matchLabels: {app: api}
  strategy:
    rollingUpdate: {maxUnavailable: 0, maxSurge: 1}
  template:
    metadata:
      labels: %s
    spec:
%s`, ns, labels, podSpec)
}

// TestDeletion proves the garbage collector and the namespace controller
// run: owned objects go away with their owner, foreground deletion completes,
// and a deleted namespace is emptied and removed.
func TestDeletion(t *testing.T) {
	c := env.Get(t).Cluster
	tests := []struct {
		name        string
		propagation metav1.DeletionPropagation
	}{
		{name: "foreground", propagation: metav1.DeletePropagationForeground},
		{name: "background", propagation: metav1.DeletePropagationBackground},
	}
	ns := c.CreateNamespace(t, "gc")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.Apply(t, fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: %[1]s, namespace: %[2]s}
spec:
  replicas: 1
  selector: {matchLabels: {app: %[1]s}}
  template:
    metadata: {labels: {app: %[1]s}}
    spec: {containers: [{name: main, image: registry.invalid/x:1}]}
`, tt.name, ns))
			c.WaitFor(t, "apps/v1", "Deployment", ns, tt.name, func(obj *unstructured.Unstructured) bool {
				n, _, _ := unstructured.NestedInt64(obj.Object, "status", "replicas")
				return n == 1
			}, 30*time.Second)
			err := c.Resource(t, "apps/v1", "Deployment").Namespace(ns).Delete(context.Background(), tt.name,
				metav1.DeleteOptions{PropagationPolicy: &tt.propagation})
			if err != nil {
				t.Fatalf("delete Deployment: %v", err)
			}
			c.WaitFor(t, "apps/v1", "Deployment", ns, tt.name,
				func(obj *unstructured.Unstructured) bool { return obj == nil }, 30*time.Second)
			deadline := time.Now().Add(30 * time.Second)
			for {
				rs, err := c.Resource(t, "apps/v1", "ReplicaSet").Namespace(ns).List(context.Background(),
					metav1.ListOptions{LabelSelector: "app=" + tt.name})
				if err != nil {
					t.Fatalf("list ReplicaSets: %v", err)
				}
				if len(rs.Items) == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("ReplicaSets of the deleted Deployment = %d after 30s, want 0", len(rs.Items))
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
	t.Run("namespace", func(t *testing.T) {
		doomed := c.CreateNamespace(t, "doomed")
		c.Apply(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: "+doomed+"}\n")
		if err := c.Resource(t, "v1", "Namespace").Delete(context.Background(), doomed, metav1.DeleteOptions{}); err != nil {
			t.Fatalf("delete namespace: %v", err)
		}
		c.WaitFor(t, "v1", "Namespace", "", doomed,
			func(obj *unstructured.Unstructured) bool { return obj == nil }, 60*time.Second)
	})
}

// pushConfigMapBundle pushes a ferry bundle whose manifests are one
// ConfigMap and returns the push result.
func pushConfigMapBundle(t *testing.T, reg *testenv.Registry, repo, namespace, name, value string) *bundle.PushResult {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"ferry.yaml": "apiVersion: ferry.dev/v1\nkind: Bundle\nname: testenv\nversion: 1.0.0\nmanifests: manifests\n",
		"manifests/configmap.yaml": fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\n  namespace: %s\ndata:\n  value: %q\n",
			name, namespace, value),
	}
	for p, c := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	client, err := bundle.NewClient(bundle.ClientOptions{
		PlainHTTP:   true,
		Credentials: bundle.StaticCredentials(map[string]auth.Credential{reg.Addr: reg.Credential()}, nil),
	})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := bundle.ParseReference(reg.Addr + "/" + repo + ":1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	res, err := bundle.Push(context.Background(), client, dir, ref, bundle.PushOptions{
		PackOptions: bundle.PackOptions{Created: time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC), Offline: true},
	})
	if err != nil {
		t.Fatalf("bundle.Push() error = %v", err)
	}
	return res
}

// TestArgoCDSyncsOCIBundle: Argo CD syncs an Application whose source is a
// ferry bundle in the test registry, when a sync is requested through
// .operation, and reports Succeeded, Synced at the digest and Healthy.
func TestArgoCDSyncsOCIBundle(t *testing.T) {
	e := env.Get(t)
	a := e.ArgoCD
	ns := e.Cluster.CreateNamespace(t, "sync")
	tests := []struct {
		name  string
		value string
	}{
		{name: "first", value: "one"},
		{name: "second", value: "two"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := "sync-" + tt.name
			res := pushConfigMapBundle(t, e.Registry, "testenv/"+app, ns, "settings-"+tt.name, tt.value)
			e.Cluster.Apply(t, fmt.Sprintf(`apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: %[1]s
  namespace: %[2]s
spec:
  project: default
  source:
    repoURL: %[3]s/testenv/%[1]s
    targetRevision: %[4]s
    path: .
  destination:
    server: %[5]s
    namespace: %[6]s
`, app, a.Namespace, a.RepoURLPrefix, res.Digest, a.ClusterServer, ns))
			t.Cleanup(func() {
				err := e.Cluster.Resource(t, "argoproj.io/v1alpha1", "Application").Namespace(a.Namespace).
					Delete(context.Background(), app, metav1.DeleteOptions{})
				if err != nil {
					t.Errorf("delete Application %s: %v", app, err)
				}
			})
			start := time.Now()
			id := a.RequestSync(t, app, res.Digest)
			got := a.WaitApplication(t, app, func(obj *unstructured.Unstructured) bool {
				return str(obj, "status", "operationState", "phase") == "Succeeded" &&
					str(obj, "status", "sync", "status") == "Synced" &&
					str(obj, "status", "health", "status") == "Healthy"
			}, 2*time.Minute)
			t.Logf("Application %s: Succeeded + Synced + Healthy %v after the request", app, time.Since(start).Round(time.Millisecond))
			checks := []struct {
				name   string
				fields []string
				want   string
			}{
				{"operationState.syncResult.revision", []string{"status", "operationState", "syncResult", "revision"}, res.Digest},
				{"sync.revision", []string{"status", "sync", "revision"}, res.Digest},
				{"operationState.operation.initiatedBy.username", []string{"status", "operationState", "operation", "initiatedBy", "username"}, "ferry-testenv"},
			}
			for _, c := range checks {
				if v := str(got, c.fields...); v != c.want {
					t.Errorf("%s = %q, want %q", c.name, v, c.want)
				}
			}
			info, _, _ := unstructured.NestedSlice(got.Object, "status", "operationState", "operation", "info")
			if b, _ := json.Marshal(info); !strings.Contains(string(b), id) {
				t.Errorf("operationState.operation.info = %s, want the request id %s", b, id)
			}
			if op, _, _ := unstructured.NestedFieldNoCopy(got.Object, "operation"); op != nil {
				t.Errorf("operation = %v after Succeeded, want it cleared", op)
			}
			cm := e.Cluster.WaitFor(t, "v1", "ConfigMap", ns, "settings-"+tt.name,
				func(obj *unstructured.Unstructured) bool { return obj != nil }, 10*time.Second)
			if v := str(cm, "data", "value"); v != tt.value {
				t.Errorf("ConfigMap data.value = %q, want %q", v, tt.value)
			}
		})
	}
}

// TestStartStopsEverything starts a whole environment in a subtest and
// checks that its cleanup left no process behind (the leak guard).
func TestStartStopsEverything(t *testing.T) {
	var pids []int
	t.Run("env", func(t *testing.T) {
		e := testenv.Start(t, testenv.Options{Registry: true, ArgoCD: true})
		pids = append(append(append(pids, e.Registry.PID()), e.Cluster.PIDs()...), e.ArgoCD.PIDs()...)
		if got, want := len(pids), 7; got != want {
			t.Errorf("processes = %d, want %d (registry, etcd, kube-apiserver, kube-controller-manager, redis, repo-server, controller)", got, want)
		}
		for _, pid := range pids {
			if !running(pid) {
				t.Errorf("pid %d not running while the test runs", pid)
			}
		}
	})
	for _, pid := range pids {
		if running(pid) {
			t.Errorf("pid %d still running after its test", pid)
		}
	}
	testenv.CheckNoLeaks(t)
}

// running reports whether pid exists and is not a zombie.
func running(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && len(s) > i+2 && s[i+2] != 'Z'
}

// TestUpDown runs the testenv command: up starts a detached environment and
// returns, the environment works, down stops every process and removes the
// state.
func TestUpDown(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the testenv command")
	}
	bin := filepath.Join(t.TempDir(), "testenv")
	build := exec.Command("go", "build", "-o", bin, "./cmd/testenv")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/testenv: %v\n%s", err, out)
	}
	state := filepath.Join(t.TempDir(), "state")
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "FERRY_TESTENV_DIR="+state)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("testenv %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
		}
		return string(out)
	}
	t.Cleanup(func() { _ = testenv.Down(state) }) // if the test fails half way

	out := run("up")
	s, err := testenv.ReadUpState(state)
	if err != nil {
		t.Fatalf("ReadUpState() error = %v", err)
	}
	for _, want := range []string{
		"export KUBECONFIG='" + s.Kubeconfig + "'",
		"export FERRY_TESTENV_REGISTRY='" + s.RegistryAddr + "'",
		"export FERRY_TESTENV_ARGOCD_NAMESPACE='argocd'",
		"# kubeconfig: " + s.Kubeconfig,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("testenv up output = %q, want it to contain %q", out, want)
		}
	}
	if got, want := len(s.Processes), 8; got != want { // registry, etcd, apiserver, kcm, simulated kubelet, redis, repo-server, controller
		t.Errorf("recorded processes = %d, want %d", got, want)
	}
	// up has returned: the processes outlive it, and are not our children.
	for _, p := range s.Processes {
		if !running(p.PID) {
			t.Errorf("%s (pid %d) not running after up returned", p.Name, p.PID)
		}
	}
	if got := run("env"); got != s.Exports() {
		t.Errorf("testenv env = %q, want %q", got, s.Exports())
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", s.Kubeconfig)
	if err != nil {
		t.Fatalf("kubeconfig %s: %v", s.Kubeconfig, err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dyn.Resource(schemaNamespaces).Get(context.Background(), "argocd", metav1.GetOptions{}); err != nil {
		t.Errorf("get namespace argocd through the kubeconfig: %v", err)
	}
	// The simulated kubelet (this binary re-executed, detached) registered its Node.
	if _, err := dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "nodes"}).Get(context.Background(), testenv.SimulatedNodeName, metav1.GetOptions{}); err != nil {
		t.Errorf("get node %s: %v", testenv.SimulatedNodeName, err)
	}
	// The token and CA files let a ferry_environment reach the cluster.
	token, err := os.ReadFile(s.ClusterTokenFile)
	if err != nil || !strings.Contains(readFile(t, s.Kubeconfig), "token: "+string(token)) {
		t.Errorf("token file %s (%v) does not hold the kubeconfig's token", s.ClusterTokenFile, err)
	}
	if ca := readFile(t, s.ClusterCAFile); !strings.HasPrefix(ca, "-----BEGIN CERTIFICATE-----") {
		t.Errorf("CA file %s = %q, want a PEM certificate", s.ClusterCAFile, ca)
	}
	if resp, err := http.Get("http://" + s.RegistryAddr + "/v2/"); err != nil {
		t.Errorf("GET registry /v2/: %v", err)
	} else {
		resp.Body.Close()
	}
	if _, err := testenv.Up(state, testenv.Options{Registry: true}); err == nil || !strings.Contains(err.Error(), "already up") {
		t.Errorf("Up() on a running environment error = %v, want already up", err)
	}

	run("down")
	for _, p := range s.Processes {
		if running(p.PID) {
			t.Errorf("%s (pid %d) still running after down", p.Name, p.PID)
		}
	}
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Errorf("state directory after down: %v, want it removed", err)
	}
	run("down") // idempotent
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// BenchmarkStartWarm measures how long Start takes for a registry, a
// cluster and Argo CD when every binary is already cached, and reports it as
// start-s (seconds per start).
func BenchmarkStartWarm(b *testing.B) {
	for _, tool := range []string{"registry", "etcd", "kube-apiserver", "kube-controller-manager", "argocd"} {
		if _, err := testenv.Tool(tool); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := testenv.ArgoCDCRDDir(); err != nil {
		b.Fatal(err)
	}
	opts := testenv.Options{Registry: true, Cluster: true, ArgoCD: true}
	var total time.Duration
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		e := testenv.Start(b, opts)
		total += time.Since(start)
		b.StopTimer()
		if err := e.Stop(); err != nil {
			b.Fatalf("Stop() error = %v", err)
		}
		b.StartTimer()
	}
	b.ReportMetric(total.Seconds()/float64(b.N), "start-s")
}

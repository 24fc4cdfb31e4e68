package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ferry-dev/terraform-provider-ferry/bundle"
	"github.com/ferry-dev/terraform-provider-ferry/internal/argocd"
	"github.com/ferry-dev/terraform-provider-ferry/internal/testenv"
	"github.com/ferry-dev/terraform-provider-ferry/internal/window"
)

const stuckDeployment = `apiVersion: apps/v1
kind: Deployment
metadata: {name: api, annotations: {argocd.argoproj.io/sync-wave: "0"}}
spec:
  replicas: 1
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec: {containers: [{name: api, image: "registry.example.com/api@sha256:1111111111111111111111111111111111111111111111111111111111111111"}]}
`

// crashLoopDeployment's one Pod runs on the simulated kubelet's Node and exits with code 1: a
// crash loop in the last wave, so Argo CD's operation succeeds and the health stays Progressing.
var crashLoopDeployment = testenv.PinnedDeployment("api", "registry.example.com/api@sha256:2222222222222222222222222222222222222222222222222222222222222222", `command: ["false"]`)

// withPrune makes appFixture's Application prune.
func withPrune(a *argocd.App) { a.Prune = true }

// appFixture writes an environment and an Application (not synced) of a pushed bundle; edit
// changes the Application before it is applied.
func appFixture(t *testing.T, e *testenv.Env, name, server string, windows []window.Spec, manifests map[string]string, edit ...func(*argocd.App)) {
	t.Helper()
	ctx := context.Background()
	c, err := argocd.New(e.Cluster.RESTConfig(), e.ArgoCD.Namespace)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ApplyEnvironment(ctx, argocd.Environment{
		Name: name, Namespaces: []string{name}, SourceRepositories: []string{"oci://" + e.Registry.Addr + "/cli/*"}, ClusterResources: []string{"Namespace"},
		Cluster: argocd.Cluster{Server: server, BearerToken: e.Cluster.Token, Insecure: true}, Windows: windows,
	}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files := map[string]string{"ferry.yaml": "apiVersion: ferry.dev/v1\nkind: Bundle\nname: c\nversion: 1.0.0\nmanifests: m\n"}
	for k, v := range manifests {
		files["m/"+k] = v
	}
	for p, content := range files {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755)
		os.WriteFile(filepath.Join(dir, p), []byte(content), 0o644)
	}
	bc, _ := bundle.NewClient(bundle.ClientOptions{PlainHTTP: true, Credentials: bundle.StaticCredentials(nil, nil)})
	ref, _ := bundle.ParseReference(e.Registry.Addr + "/cli/" + name)
	res, err := bundle.Push(ctx, bc, dir, ref, bundle.PushOptions{PackOptions: bundle.PackOptions{Created: time.Unix(1764115200, 0)}})
	if err != nil {
		t.Fatal(err)
	}
	a := argocd.App{Name: name, Project: name, RepoURL: ref.OCIURL(), Digest: res.Digest, Server: server, Namespace: name,
		SyncOptions: []string{argocd.SyncOptionCreateNamespace}}
	for _, f := range edit {
		f(&a)
	}
	if _, err := c.ApplyApplication(ctx, a); err != nil {
		t.Fatal(err)
	}
}

// TestCLIAppClasses runs `ferry app sync` on real Argo CD scenarios and checks one exit code per
// failure class (docs/cli.md) and the JSON outcome.
func TestCLIAppClasses(t *testing.T) {
	e := sharedEnv.Get(t)
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := "https://" + l.Addr().String()
	l.Close()
	later := time.Now().UTC().Add(12 * time.Hour)
	cmOK := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok}\ndata: {a: b}\n"
	tests := []struct {
		name      string
		server    string
		windows   []window.Spec
		manifests map[string]string
		args      []string
		code      int
		class     string
	}{
		{"success", "", nil, map[string]string{"cm.yaml": cmOK}, nil, 0, "success"},
		{"permanent", "", nil, map[string]string{"role.yaml": "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: cli-forbidden}\nrules: []\n"}, nil, 2, "permanent"},
		{"transient", closed, nil, map[string]string{"cm.yaml": cmOK}, nil, 3, "transient"},
		{"window", "", []window.Spec{{Kind: "allow", Schedule: fmt.Sprintf("0 %d * * *", later.Hour()), Duration: "1h"}}, map[string]string{"cm.yaml": cmOK}, nil, 4, "window"},
		{"crash loop", "", nil, map[string]string{"deploy.yaml": crashLoopDeployment}, nil, 2, "permanent"},
		{"stuck", "", nil, map[string]string{"deploy.yaml": stuckDeployment, "later.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: later, annotations: {argocd.argoproj.io/sync-wave: \"1\"}}\n"}, []string{"--stuck-after", "10s"}, 5, "stuck"},
		{"timeout", "", nil, map[string]string{"deploy.yaml": stuckDeployment, "later.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: later, annotations: {argocd.argoproj.io/sync-wave: \"1\"}}\n"}, []string{"--timeout", "20s"}, 5, "timeout"},
	}
	env := []string{"KUBE_CONFIG_PATH=" + e.Cluster.Kubeconfig}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			name := "cli-" + strings.ReplaceAll(tt.name, " ", "-")
			server := tt.server
			if server == "" {
				server = e.ArgoCD.ClusterServer
			}
			appFixture(t, e, name, server, tt.windows, tt.manifests)
			args := append([]string{"app", "sync", name, "--argocd-namespace", e.ArgoCD.Namespace, "--format", "json", "--timeout", "3m"}, tt.args...)
			r := ferry(t, env, "", args...)
			var out struct {
				Class    string
				Error    string
				NextOpen string
			}
			if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
				t.Fatalf("ferry app sync --format json: %v\n%s\n%s", err, r.stdout, r.stderr)
			}
			if r.code != tt.code || out.Class != tt.class {
				t.Errorf("ferry app sync = exit %d class %q (%s), want exit %d class %q", r.code, out.Class, out.Error, tt.code, tt.class)
			}
			if tt.name == "crash loop" && !regexp.MustCompile(`^Sync failed: Deployment \S+/api is crash-looping: container api of Pod api-\S+ exited with code 1`).MatchString(out.Error) {
				t.Errorf("crash loop error = %q, want it named with the container's exit", out.Error)
			}
			if tt.class == "window" && out.NextOpen == "" {
				t.Errorf("window outcome has no nextOpen: %s", r.stdout)
			}
		})
	}
}

// TestCLIAppNeedsApproval: a prune Argo CD must have confirmed ends `ferry app sync` with the
// approval class and its own exit code, naming the resource.
func TestCLIAppNeedsApproval(t *testing.T) {
	e := sharedEnv.Get(t)
	name := "cli-approval"
	confirm := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: precious\n  annotations:\n    argocd.argoproj.io/sync-options: Prune=confirm\ndata: {a: b}\n"
	appFixture(t, e, name, e.ArgoCD.ClusterServer, nil, map[string]string{"precious.yaml": confirm, "cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: other}\ndata: {v: \"1\"}\n"})
	env := []string{"KUBE_CONFIG_PATH=" + e.Cluster.Kubeconfig}
	args := []string{"app", "sync", name, "--argocd-namespace", e.ArgoCD.Namespace, "--format", "json", "--timeout", "3m"}
	if r := ferry(t, env, "", args...); r.code != 0 {
		t.Fatalf("first sync: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// The next release drops the ConfigMap, with pruning on.
	appFixture(t, e, name, e.ArgoCD.ClusterServer, nil, map[string]string{"cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: other}\ndata: {v: \"2\"}\n"}, withPrune)
	r := ferry(t, env, "", args...)
	var out struct {
		Class     string
		Error     string
		Resources []struct{ Kind, Name string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("ferry app sync --format json: %v\n%s\n%s", err, r.stdout, r.stderr)
	}
	if r.code != 7 || out.Class != "approval" {
		t.Fatalf("ferry app sync = exit %d class %q (%s), want exit 7 class approval", r.code, out.Class, out.Error)
	}
	found := false
	for _, res := range out.Resources {
		found = found || (res.Kind == "ConfigMap" && res.Name == "precious")
	}
	if !found {
		t.Errorf("resources = %+v, want ConfigMap precious", out.Resources)
	}
	// Without JSON, the error says how to approve.
	r = ferry(t, env, "", "app", "wait", name, "--argocd-namespace", e.ArgoCD.Namespace, "--timeout", "1m")
	if r.code != 7 || !strings.Contains(r.stderr, "argocd.argoproj.io/deletion-approved") {
		t.Errorf("ferry app wait = exit %d\n%s%s, want exit 7 naming the approval annotation", r.code, r.stdout, r.stderr)
	}
}

// TestCLIAppConflictStatusTerminate: a second sync while ferry's first operation runs is a
// conflict (exit 6); status shows the operation; terminate ends it.
func TestCLIAppConflictStatusTerminate(t *testing.T) {
	e := sharedEnv.Get(t)
	name := "cli-conflict"
	appFixture(t, e, name, e.ArgoCD.ClusterServer, nil, map[string]string{"deploy.yaml": stuckDeployment, "later.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: later, annotations: {argocd.argoproj.io/sync-wave: \"1\"}}\n"})
	env := []string{"KUBE_CONFIG_PATH=" + e.Cluster.Kubeconfig}
	ns := []string{"--argocd-namespace", e.ArgoCD.Namespace}
	if r := ferry(t, env, "", append([]string{"app", "sync", name, "--no-wait"}, ns...)...); r.code != 0 {
		t.Fatalf("sync --no-wait = exit %d: %s", r.code, r.stderr)
	}
	r := ferry(t, env, "", append([]string{"app", "sync", name}, ns...)...)
	if r.code != 6 || !strings.Contains(r.stderr, "Sync conflict: an operation started by ferry") {
		t.Errorf("second sync = exit %d %q, want 6 and the conflict", r.code, r.stderr)
	}
	e.ArgoCD.WaitApplication(t, name, func(a *unstructuredObj) bool {
		op := argocd.StatusOf(a).LastOperation
		return op != nil && op.Phase == "Running"
	}, time.Minute)
	r = ferry(t, env, "", append([]string{"app", "status", name, "--format", "json"}, ns...)...)
	var st argocd.Status
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || !st.OperationRunning || st.LastOperation == nil || st.LastOperation.InitiatedBy != "ferry" {
		t.Errorf("status = %s (%v), want a running operation by ferry", r.stdout, err)
	}
	if r := ferry(t, env, "", append([]string{"app", "terminate", name}, ns...)...); r.code != 0 {
		t.Errorf("terminate = exit %d %s", r.code, r.stderr)
	}
	e.ArgoCD.WaitApplication(t, name, func(a *unstructuredObj) bool {
		op := argocd.StatusOf(a).LastOperation
		return op != nil && op.Phase == "Failed" && op.Message == "Operation terminated"
	}, time.Minute)
	if r := ferry(t, env, "", append([]string{"app", "wait", "missing-app"}, ns...)...); r.code != 2 {
		t.Errorf("wait on a missing app = exit %d, want 2", r.code)
	}
}

// TestCLIAppStatusRepairsOverride: `ferry app status` finds an Application an interrupted override
// left in the environment's override project (no operation running), moves it back to its
// project with a warning on stderr, and deletes the unused override project.
func TestCLIAppStatusRepairsOverride(t *testing.T) {
	e := sharedEnv.Get(t)
	name := "cli-ov-repair"
	appFixture(t, e, name, e.ArgoCD.ClusterServer, nil, map[string]string{"cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"})
	ctx := context.Background()
	c, err := argocd.New(e.Cluster.RESTConfig(), e.ArgoCD.Namespace)
	if err != nil {
		t.Fatal(err)
	}
	// The leftover of a killed override: the override project and the Application in it.
	p, err := c.GetProject(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	ov := &unstructuredObj{Object: map[string]any{"apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject",
		"metadata": map[string]any{"name": argocd.OverrideProjectName(name), "namespace": e.ArgoCD.Namespace}, "spec": p.Object["spec"]}}
	delete(ov.Object["spec"].(map[string]any), "syncWindows")
	dyn := e.Cluster.Dynamic(t)
	if _, err := dyn.Resource(argocd.AppProjectGVR).Namespace(e.ArgoCD.Namespace).Create(ctx, ov, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	patch := []byte(`{"spec":{"project":"` + argocd.OverrideProjectName(name) + `"}}`)
	if _, err := dyn.Resource(argocd.ApplicationGVR).Namespace(e.ArgoCD.Namespace).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	r := ferry(t, []string{"KUBE_CONFIG_PATH=" + e.Cluster.Kubeconfig}, "", "app", "status", name, "--argocd-namespace", e.ArgoCD.Namespace)
	if r.code != 0 || !strings.Contains(r.stderr, "warning: application "+name+" was left in the override project") || !strings.Contains(r.stderr, "moved it back to project "+name) {
		t.Errorf("status = exit %d, stderr %q; want a warning saying the application was moved back", r.code, r.stderr)
	}
	if !regexp.MustCompile(`(?m)^Project:\s+` + name + `$`).MatchString(r.stdout) {
		t.Errorf("status output %q, want Project: %s", r.stdout, name)
	}
	if _, err := c.GetProject(ctx, argocd.OverrideProjectName(name)); !errors.Is(err, argocd.ErrNotFound) {
		t.Errorf("override project after the repair: %v, want it deleted", err)
	}
}

// TestCLIAppStatusShowsLastOverride: `ferry app sync --window-policy override` through an
// always-closed deny window, run as the user alice, leaves an audit record that `ferry app status`
// shows, as text and as JSON (lastOverride), also after a further plain apply of the Application.
func TestCLIAppStatusShowsLastOverride(t *testing.T) {
	e := sharedEnv.Get(t)
	name := "cli-ov-audit"
	freeze := window.Spec{Kind: "deny", Schedule: "* * * * *", Duration: "1h", Description: "freeze"}
	appFixture(t, e, name, e.ArgoCD.ClusterServer, []window.Spec{freeze}, map[string]string{"cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"})
	env := []string{"KUBE_CONFIG_PATH=" + e.Cluster.Kubeconfig, "TFC_RUN_ID=", "USER=alice"}
	ns := []string{"--argocd-namespace", e.ArgoCD.Namespace}
	if r := ferry(t, env, "", append([]string{"app", "sync", name, "--timeout", "3m", "--window-policy", "override", "--override-reason", "INC-9 rollback"}, ns...)...); r.code != 0 {
		t.Fatalf("override sync = exit %d: %s", r.code, r.stderr)
	}
	// A further apply under ferry's field manager keeps the record.
	c, err := argocd.New(e.Cluster.RESTConfig(), e.ArgoCD.Namespace)
	if err != nil {
		t.Fatal(err)
	}
	app, err := c.GetApplication(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ApplyApplication(context.Background(), argocd.AppFromLive(app)); err != nil {
		t.Fatal(err)
	}
	r := ferry(t, env, "", append([]string{"app", "status", name}, ns...)...)
	if r.code != 0 || !regexp.MustCompile(`(?m)^Last override: \S+ by user:alice to sha256:\S+ \(request \w+\): INC-9 rollback$`).MatchString(r.stdout) ||
		!strings.Contains(r.stdout, `window: deny window project `+name+` syncWindows[0] ("freeze")`) {
		t.Errorf("status = exit %d\n%s\nwant the last override by user:alice with its window", r.code, r.stdout)
	}
	r = ferry(t, env, "", append([]string{"app", "status", name, "--format", "json"}, ns...)...)
	var st struct {
		Name         string                 `json:"name"`
		LastOverride *argocd.OverrideRecord `json:"lastOverride"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || st.Name != name || st.LastOverride == nil || st.LastOverride.Reason != "INC-9 rollback" ||
		st.LastOverride.By != "user:alice" || !strings.Contains(st.LastOverride.Window, `("freeze")`) || st.LastOverride.Revision == "" {
		t.Errorf("status --format json = %s (%v), want lastOverride by user:alice", r.stdout, err)
	}
}

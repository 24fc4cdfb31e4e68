package argocd_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ferry-dev/terraform-provider-ferry/bundle"
	"github.com/ferry-dev/terraform-provider-ferry/internal/argocd"
	"github.com/ferry-dev/terraform-provider-ferry/internal/testenv"
)

// Its simulated kubelet runs only Pods pinned to its Node (TestCrashLoop).
var shared = testenv.NewShared(testenv.Options{Registry: true, ArgoCD: true,
	ClusterOptions: testenv.ClusterOptions{SimulatedKubelet: true, SimulatedKubeletNoScheduler: true}})

// strict is an environment whose API server ends every watch after 2 to 4 seconds and whose
// application controller ends any operation after 15 s (--sync-timeout).
var strict = testenv.NewShared(testenv.Options{Registry: true, ArgoCD: true,
	ClusterOptions: testenv.ClusterOptions{SimulatedKubelet: true, SimulatedKubeletNoScheduler: true, ExtraAPIServerArgs: []string{"--min-request-timeout=2"}},
	ArgoCDOptions:  testenv.ArgoCDOptions{ExtraControllerArgs: []string{"--sync-timeout=15"}}})

func TestMain(m *testing.M) { testenv.Main(m) }

// setup writes an environment and pushes a bundle with manifests; it returns the client and App.
func setup(t testing.TB, name string, manifests map[string]string) (*testenv.Env, *argocd.Client, argocd.App) {
	t.Helper()
	return setupIn(t, shared.Get(t), name, manifests)
}

// environment is the ferry environment setup writes for name: no deployment windows.
func environment(e *testenv.Env, name string) argocd.Environment {
	return argocd.Environment{
		Name: name, Namespaces: []string{name}, SourceRepositories: []string{"oci://" + e.Registry.Addr + "/engine/*"},
		ClusterResources: []string{"Namespace"}, Cluster: argocd.Cluster{Server: e.ArgoCD.ClusterServer, BearerToken: e.Cluster.Token, Insecure: true},
	}
}

// setupIn is setup in the environment e.
func setupIn(t testing.TB, e *testenv.Env, name string, manifests map[string]string) (*testenv.Env, *argocd.Client, argocd.App) {
	t.Helper()
	c, err := argocd.New(e.Cluster.RESTConfig(), e.ArgoCD.Namespace)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.ApplyEnvironment(ctx, environment(e, name)); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files := map[string]string{"ferry.yaml": "apiVersion: ferry.dev/v1\nkind: Bundle\nname: e\nversion: 1.0.0\nmanifests: m\n"}
	for k, v := range manifests {
		files["m/"+k] = v
	}
	for p, content := range files {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755)
		os.WriteFile(filepath.Join(dir, p), []byte(content), 0o644)
	}
	bc, _ := bundle.NewClient(bundle.ClientOptions{PlainHTTP: true, Credentials: bundle.StaticCredentials(nil, nil)})
	ref, _ := bundle.ParseReference(e.Registry.Addr + "/engine/" + name)
	res, err := bundle.Push(ctx, bc, dir, ref, bundle.PushOptions{PackOptions: bundle.PackOptions{Created: time.Unix(1764115200, 0)}})
	if err != nil {
		t.Fatal(err)
	}
	return e, c, argocd.App{Name: name, Project: name, RepoURL: ref.OCIURL(), Digest: res.Digest, Server: e.ArgoCD.ClusterServer, Namespace: name,
		SyncOptions: []string{argocd.SyncOptionCreateNamespace}, CascadeDelete: true}
}

// neverReady is a Deployment "api" whose Pod is never scheduled (the shared environments' kubelet
// runs only Pods pinned to its Node), and laterWave a ConfigMap in the next sync wave: together an
// operation that waits for healthy state of apps/Deployment/api forever.
const (
	neverReady = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: api}\nspec:\n  replicas: 1\n  selector: {matchLabels: {app: api}}\n" +
		"  template:\n    metadata: {labels: {app: api}}\n    spec: {containers: [{name: api, image: registry.example.com/api:1}]}\n"
	laterWave = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: later, annotations: {argocd.argoproj.io/sync-wave: \"1\"}}\n"
)

func cm(name, v string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\ndata:\n  v: %q\n", name, v)
}

// TestConcurrentSyncRequests sends 100 sync requests at once on one application: each either runs
// its own operation to success or is refused as a conflict; none is overwritten or lost (a lost
// request would never see its own operation and end stuck).
func TestConcurrentSyncRequests(t *testing.T) {
	_, c, a := setup(t, "concurrent", map[string]string{"cm.yaml": cm("a", "1")})
	ctx := context.Background()
	if _, err := c.Sync(ctx, a, true, argocd.SyncOptions{Timeout: 2 * time.Minute}); err != nil {
		t.Fatalf("first Sync() error = %v", err)
	}
	const n = 100
	classes := make([]argocd.Class, n)
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Go(func() {
			res, err := c.Sync(ctx, a, true, argocd.SyncOptions{Timeout: 4 * time.Minute, PickupTimeout: time.Minute})
			var se *argocd.SyncError
			switch {
			case err == nil:
				classes[i], ids[i] = argocd.ClassSuccess, res.LastOperation.RequestID
			case errors.As(err, &se):
				classes[i] = se.Class
			default:
				t.Errorf("request %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	count := map[argocd.Class]int{}
	seen := map[string]bool{}
	for i, cl := range classes {
		count[cl]++
		if cl == argocd.ClassSuccess {
			if ids[i] == "" || seen[ids[i]] {
				t.Errorf("request %d succeeded with request id %q, want its own unique operation", i, ids[i])
			}
			seen[ids[i]] = true
		}
	}
	t.Logf("100 concurrent requests: %v", count)
	if count[argocd.ClassSuccess] == 0 || count[argocd.ClassSuccess]+count[argocd.ClassConflict] != n {
		t.Errorf("outcomes = %v, want only successes (at least one) and conflicts", count)
	}
}

// TestStaleSyncedIsNotSuccess: an application Synced and Healthy at the previous revision is never
// reported as a success for the new digest.
func TestStaleSyncedIsNotSuccess(t *testing.T) {
	_, c, a := setup(t, "stale", map[string]string{"cm.yaml": cm("a", "1")})
	ctx := context.Background()
	if _, err := c.Sync(ctx, a, true, argocd.SyncOptions{Timeout: 2 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	other := "sha256:" + fmt.Sprintf("%064d", 7)
	_, err := c.Wait(ctx, a.Name, other, argocd.SyncOptions{Timeout: 15 * time.Second})
	var se *argocd.SyncError
	if !errors.As(err, &se) || se.Class != argocd.ClassTimeout {
		t.Errorf("Wait(other digest) on an app Synced at %s = %v, want a timeout, never success", a.Digest, err)
	}
}

// TestTimeoutTerminatesOwnOperation: when the timeout runs out, ferry terminates the operation
// it started, and Argo CD ends it as "Operation terminated".
func TestTimeoutTerminatesOwnOperation(t *testing.T) {
	e, c, a := setup(t, "timeout", map[string]string{"deploy.yaml": neverReady, "later.yaml": laterWave})
	_, err := c.Sync(context.Background(), a, true, argocd.SyncOptions{Timeout: 25 * time.Second, StuckAfter: 10 * time.Minute})
	var se *argocd.SyncError
	if !errors.As(err, &se) || se.Class != argocd.ClassTimeout || se.RequestID == "" {
		t.Fatalf("Sync() = %v, want ClassTimeout with a request id", err)
	}
	app := e.ArgoCD.WaitApplication(t, a.Name, func(app *unstructured.Unstructured) bool {
		op := argocd.StatusOf(app).LastOperation
		return op != nil && op.Phase == "Failed"
	}, time.Minute)
	if op := argocd.StatusOf(app).LastOperation; op.Message != "Operation terminated" || op.RequestID != se.RequestID {
		t.Errorf("operation after the timeout = %+v, want ferry's own (%s) terminated", op, se.RequestID)
	}
	if err := c.DeleteApplication(context.Background(), a.Name, true); err != nil {
		t.Errorf("DeleteApplication() = %v", err)
	}
}

// TestPickupTimeoutWithdrawsRequest: a request the controller never picks up (it skips the
// application: argocd.argoproj.io/skip-reconcile) is reported stuck after the pick-up limit and
// withdrawn, so that it neither runs later nor blocks the next request as a conflict; a timeout
// before pick-up withdraws it the same way, and so does Terminate.
func TestPickupTimeoutWithdrawsRequest(t *testing.T) {
	e, c, a := setup(t, "pickup", map[string]string{"cm.yaml": cm("a", "1")})
	ctx := context.Background()
	first, err := c.Sync(ctx, a, true, argocd.SyncOptions{Timeout: 2 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	apps := e.Cluster.Dynamic(t).Resource(argocd.ApplicationGVR).Namespace(e.ArgoCD.Namespace)
	skip := func(v string) {
		t.Helper()
		patch := `{"metadata":{"annotations":{"argocd.argoproj.io/skip-reconcile":null}}}`
		if v != "" {
			patch = `{"metadata":{"annotations":{"argocd.argoproj.io/skip-reconcile":"` + v + `"}}}`
		}
		if _, err := apps.Patch(ctx, a.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	pending := func() string {
		t.Helper()
		app, err := apps.Get(ctx, a.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		op, _, _ := unstructured.NestedMap(app.Object, "operation")
		if op == nil {
			return ""
		}
		return fmt.Sprint(op["info"])
	}
	skip("true")
	// The annotation stops the controller from queueing the app, but not an item it queued
	// before: after an operation it re-queues the app for up to 30 s (appOperationMaxRequeueInterval
	// in Argo CD's controller), and processing that item does not look at the annotation, so it
	// would run a request written now. Wait until that backstop has passed.
	finished, perr := time.Parse(time.RFC3339, first.LastOperation.FinishedAt)
	if perr != nil {
		t.Fatalf("first sync's finishedAt %q: %v", first.LastOperation.FinishedAt, perr)
	}
	time.Sleep(time.Until(finished.Add(33 * time.Second)))

	_, err = c.Sync(ctx, a, true, argocd.SyncOptions{Timeout: time.Minute, PickupTimeout: 5 * time.Second})
	var se *argocd.SyncError
	if !errors.As(err, &se) || se.Class != argocd.ClassStuck || !strings.Contains(se.Summary, "did not pick up") {
		t.Fatalf("Sync() on a skipped application = %v, want stuck: did not pick up", err)
	}
	if !strings.Contains(se.Advice, "withdrew its sync request") {
		t.Errorf("advice = %q, want it to say the request was withdrawn", se.Advice)
	}
	if op := pending(); op != "" {
		t.Errorf("after the stuck report the Application still requests an operation: %s", op)
	}

	_, err = c.Sync(ctx, a, true, argocd.SyncOptions{Timeout: 4 * time.Second, PickupTimeout: time.Minute})
	if !errors.As(err, &se) || se.Class != argocd.ClassTimeout || !strings.Contains(se.Advice, "withdrew its sync request") {
		t.Fatalf("Sync() timing out before pick-up = %v, want a timeout whose advice says the request was withdrawn", err)
	}
	if op := pending(); op != "" {
		t.Errorf("after the timeout the Application still requests an operation: %s", op)
	}

	// Terminate (ferry app terminate) withdraws a request not yet started: no operation state is
	// written for it.
	if _, err := c.Sync(ctx, a, false, argocd.SyncOptions{Timeout: time.Minute}); err != nil {
		t.Fatalf("Sync(wait=false) = %v", err)
	}
	if op := pending(); op == "" {
		t.Fatal("Sync(wait=false) left no requested operation")
	}
	if stopped, err := c.Terminate(ctx, a.Name); err != nil || stopped != argocd.Withdrawn {
		t.Errorf("Terminate() of a request not started = %v, %v; want Withdrawn", stopped, err)
	}
	if op := pending(); op != "" {
		t.Errorf("after Terminate the Application still requests an operation: %s", op)
	}
	if op := argocd.StatusOf(e.ArgoCD.Application(t, a.Name)).LastOperation; op != nil {
		t.Errorf("operation state after the withdrawal = %+v, want none", op)
	}
	if _, err := c.Terminate(ctx, a.Name); err == nil {
		t.Error("Terminate() with nothing running or requested = nil error, want one")
	}

	// Nothing left behind: once the controller serves the app again, the next sync is not a
	// conflict with an orphaned request.
	skip("")
	if _, err := c.Sync(ctx, a, true, argocd.SyncOptions{Timeout: 2 * time.Minute, ConflictWait: time.Second}); err != nil {
		t.Errorf("Sync() after the withdrawn requests = %v, want success", err)
	}
}

// setupB is setup for benchmarks: one ConfigMap whose value is v.
func setupB(b *testing.B, e *testenv.Env, name, v string) (*testenv.Env, *argocd.Client, argocd.App) {
	b.Helper()
	_ = e
	return setup(b, name, map[string]string{"cm.yaml": cm("a", v)})
}

// TestCrashLoop: a Deployment whose container keeps exiting fails the sync at once as permanent,
// named crash-looping with the container's exit, whether Argo CD's operation still waits for it
// (a later wave: ferry terminates its own operation) or already succeeded (the last wave), and
// `Wait` reports it the same way.
func TestCrashLoop(t *testing.T) {
	deploy := testenv.PinnedDeployment("api", "registry.example.com/api:1", `command: ["sh", "-c", "exit 2"]`)
	for _, tt := range []struct {
		name      string
		manifests map[string]string
		phase     string // of ferry's operation once it failed
	}{
		{"crash-wave", map[string]string{"deploy.yaml": deploy, "later.yaml": laterWave}, "Failed"},
		{"crash-last", map[string]string{"deploy.yaml": deploy}, "Succeeded"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, c, a := setup(t, tt.name, tt.manifests)
			ctx := context.Background()
			_, err := c.Sync(ctx, a, true, argocd.SyncOptions{Timeout: 2 * time.Minute})
			var se *argocd.SyncError
			if !errors.As(err, &se) || se.Class != argocd.ClassPermanent || se.Summary != "Sync failed: Deployment "+a.Namespace+"/api is crash-looping" ||
				!strings.Contains(se.LastMessage, "container api of Pod api-") || !strings.Contains(se.LastMessage, "exited with code 2 (Error)") {
				t.Fatalf("Sync() = %v, want permanent: Deployment %s/api is crash-looping with the exit code", err, a.Namespace)
			}
			if len(se.Resources) == 0 || se.Resources[0].Kind != "Deployment" || !strings.Contains(se.Advice, "--previous") {
				t.Errorf("resources %v, advice %q: want the Deployment first and how to see the output", se.Resources, se.Advice)
			}
			// ferry's own operation does not keep running for a crash loop.
			deadline := time.Now().Add(time.Minute)
			for {
				st, err := c.Status(ctx, a.Name)
				if err == nil && st.LastOperation != nil && st.LastOperation.RequestID == se.RequestID && st.LastOperation.Phase == tt.phase {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("operation %s: status %+v, want phase %s", se.RequestID, st, tt.phase)
				}
				time.Sleep(time.Second)
			}
			_, err = c.Wait(ctx, a.Name, a.Digest, argocd.SyncOptions{Timeout: time.Minute})
			if !errors.As(err, &se) || se.Class != argocd.ClassPermanent || !strings.Contains(se.Summary, "is crash-looping") {
				if tt.phase == "Succeeded" {
					t.Errorf("Wait() = %v, want the crash loop", err)
				}
			}
		})
	}
}

// TestWatchReestablished: the API server here ends every watch after 2 to 4 seconds (as a real
// one does after its --min-request-timeout of 30 to 60 minutes), and the rollout takes 12 s (a
// readiness probe's initial delay): the engine follows the application across several expired
// watches and still sees it become Healthy, instead of waiting on a dead watch until the timeout.
func TestWatchReestablished(t *testing.T) {
	t.Parallel()
	e := strict.Get(t)
	deploy := testenv.PinnedDeployment("api", "registry.example.com/api:1", "readinessProbe: {httpGet: {path: /ready, port: 8080}, initialDelaySeconds: 12}")
	_, c, a := setupIn(t, e, "rewatch", map[string]string{"deploy.yaml": deploy})
	start := time.Now()
	res, err := c.Sync(context.Background(), a, true, argocd.SyncOptions{Timeout: 2 * time.Minute})
	if err != nil {
		t.Fatalf("Sync() across expiring watches = %v, want success", err)
	}
	if took := time.Since(start); took < 10*time.Second || res.Revision != a.Digest || res.HealthStatus != "Healthy" {
		t.Errorf("Sync() = %+v after %s; want Healthy at %s after the 12 s readiness delay (several watches)", res, took, a.Digest)
	}
}

// TestControllerSyncTimeout: an operation Argo CD's own --sync-timeout ends is stuck, named with
// what it waited for, not a generic failure.
func TestControllerSyncTimeout(t *testing.T) {
	t.Parallel()
	_, c, a := setupIn(t, strict.Get(t), "ctl-timeout", map[string]string{"deploy.yaml": neverReady, "later.yaml": laterWave})
	_, err := c.Sync(context.Background(), a, true, argocd.SyncOptions{Timeout: 2 * time.Minute, StuckAfter: 5 * time.Minute})
	var se *argocd.SyncError
	if !errors.As(err, &se) || se.Class != argocd.ClassStuck ||
		se.Summary != "Sync stuck: Argo CD's controller sync timeout ended the operation: waiting for healthy state of apps/Deployment/api" ||
		!strings.Contains(se.LastMessage, "triggered by controller sync timeout") {
		t.Errorf("Sync() = %v, want stuck: the controller's sync timeout, waiting for apps/Deployment/api", err)
	}
}

// TestStillOutOfSync: a sync that succeeds but leaves the application OutOfSync (here a field the
// API server prunes because the CRD's schema does not know it) fails after one refresh as
// permanent, naming the resource, instead of waiting for the health timeout.
func TestStillOutOfSync(t *testing.T) {
	e := shared.Get(t)
	e.Cluster.Apply(t, `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.test.ferry.dev}
spec:
  group: test.ferry.dev
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer}
`)
	e.Cluster.WaitFor(t, "apiextensions.k8s.io/v1", "CustomResourceDefinition", "", "widgets.test.ferry.dev", func(o *unstructured.Unstructured) bool {
		status, _ := testenv.ConditionStatus(o, "Established")
		return status == "True"
	}, time.Minute)
	_, c, a := setup(t, "outofsync", map[string]string{"widget.yaml": "apiVersion: test.ferry.dev/v1\nkind: Widget\nmetadata: {name: w}\nspec: {size: 1, colour: red}\n"})
	start := time.Now()
	_, err := c.Sync(context.Background(), a, true, argocd.SyncOptions{Timeout: 3 * time.Minute})
	var se *argocd.SyncError
	if !errors.As(err, &se) || se.Class != argocd.ClassPermanent || se.Summary != "Sync incomplete: still OutOfSync after the sync: test.ferry.dev/Widget outofsync/w" {
		t.Fatalf("Sync() = %v, want permanent: still OutOfSync, naming the Widget", err)
	}
	t.Logf("failed after %s", time.Since(start).Round(time.Second))
	// `ferry app wait` (and auto_sync) come to the same conclusion without a sync of their own.
	_, err = c.Wait(context.Background(), a.Name, a.Digest, argocd.SyncOptions{Timeout: time.Minute})
	if !errors.As(err, &se) || se.Class != argocd.ClassPermanent || !strings.HasPrefix(se.Summary, "Sync incomplete: still OutOfSync after the sync") {
		t.Errorf("Wait() = %v, want permanent: still OutOfSync", err)
	}
}

// TestCrashLoopFixed: deploying the fix of a crash-looping Deployment succeeds, although the old
// revision's Pod keeps crash-looping until the new one is ready (8 s here): only the Pods of the
// revision being rolled out count.
func TestCrashLoopFixed(t *testing.T) {
	t.Parallel()
	_, c, broken := setup(t, "crash-fixed", map[string]string{"deploy.yaml": testenv.PinnedDeployment("api", "registry.example.com/api:1", `command: ["false"]`)})
	ctx := context.Background()
	_, err := c.Sync(ctx, broken, true, argocd.SyncOptions{Timeout: 2 * time.Minute})
	var se *argocd.SyncError
	if !errors.As(err, &se) || !strings.Contains(se.Summary, "is crash-looping") {
		t.Fatalf("Sync(broken) = %v, want crash-looping", err)
	}
	_, _, fixed := setup(t, "crash-fixed", map[string]string{"deploy.yaml": testenv.PinnedDeployment("api", "registry.example.com/api:2",
		"readinessProbe: {httpGet: {path: /ready, port: 8080}, initialDelaySeconds: 8}")})
	res, err := c.Sync(ctx, fixed, true, argocd.SyncOptions{Timeout: 2 * time.Minute})
	if err != nil || res.Revision != fixed.Digest || res.HealthStatus != "Healthy" {
		t.Errorf("Sync(fixed) = %+v, %v; want Healthy at %s while the old Pod still crash-loops", res, err, fixed.Digest)
	}
}

// TestAutomatedSyncConflict: an operation Argo CD's automated sync started (and that keeps
// running: it waits for a Deployment that never becomes ready) is a conflict for ferry's manual
// sync, named as the automated sync's, and it is left running, not overwritten.
func TestAutomatedSyncConflict(t *testing.T) {
	t.Parallel()
	e, c, a := setup(t, "auto-race", map[string]string{"deploy.yaml": neverReady, "later.yaml": laterWave})
	ctx := context.Background()
	auto := a
	auto.AutoSync = true
	if _, err := c.ApplyApplication(ctx, auto); err != nil {
		t.Fatal(err)
	}
	running := func(app *unstructured.Unstructured) bool {
		automated, _, _ := unstructured.NestedBool(app.Object, "status", "operationState", "operation", "initiatedBy", "automated")
		phase, _, _ := unstructured.NestedString(app.Object, "status", "operationState", "phase")
		return automated && phase == "Running"
	}
	e.ArgoCD.WaitApplication(t, a.Name, running, 2*time.Minute)
	_, err := c.Sync(ctx, a, true, argocd.SyncOptions{Timeout: time.Minute})
	var se *argocd.SyncError
	if !errors.As(err, &se) || se.Class != argocd.ClassConflict || !strings.Contains(se.Summary, "started by automated sync") {
		t.Errorf("Sync() during an automated operation = %v, want a conflict naming the automated sync", err)
	}
	if app := e.ArgoCD.WaitApplication(t, a.Name, func(*unstructured.Unstructured) bool { return true }, time.Minute); !running(app) {
		t.Errorf("the automated operation is no longer running after ferry's attempt: %v", app.Object["status"])
	}
	if _, err := c.Terminate(ctx, a.Name); err != nil {
		t.Error(err)
	}
}

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-dev/terraform-provider-ferry/bundle"
	"github.com/ferry-dev/terraform-provider-ferry/internal/argocd"
	"github.com/ferry-dev/terraform-provider-ferry/internal/testenv"
	"github.com/ferry-dev/terraform-provider-ferry/internal/window"
)

// pushAnother pushes another release of appFixture's bundle (same repository, other manifests)
// and returns its digest-pinned reference.
func pushAnother(t *testing.T, e *testenv.Env, name string, manifests map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{"ferry.yaml": "apiVersion: ferry.dev/v1\nkind: Bundle\nname: c\nversion: 2.0.0\nmanifests: m\n"}
	for k, v := range manifests {
		files["m/"+k] = v
	}
	for p, content := range files {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, p), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bc, _ := bundle.NewClient(bundle.ClientOptions{PlainHTTP: true, Credentials: bundle.StaticCredentials(nil, nil)})
	ref, _ := bundle.ParseReference(e.Registry.Addr + "/cli/" + name)
	res, err := bundle.Push(context.Background(), bc, dir, ref, bundle.PushOptions{PackOptions: bundle.PackOptions{Created: time.Unix(1764115200, 0)}})
	if err != nil {
		t.Fatal(err)
	}
	return res.PinnedReference
}

// cliOutcome is the JSON outcome of `ferry app sync|wait --format json`.
type cliOutcome struct {
	Class  string
	Error  string
	Result *argocd.Result
}

func decodeOutcome(t *testing.T, r result) cliOutcome {
	t.Helper()
	var out cliOutcome
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("--format json: %v\n%s\n%s", err, r.stdout, r.stderr)
	}
	return out
}

// TestCLIAppSyncOptions: each option of `ferry app sync` that the other CLI tests do not exercise
// changes what the command does, against the real controller:
//   - --health-timeout 5s: a one-wave Deployment that never becomes ready (the operation succeeds)
//     ends the sync as stuck within seconds instead of at --timeout 3m;
//   - --window-policy wait: a window that opens in 12 hours, beyond --timeout 20s, fails at once
//     with the window class and says the window does not open before the timeout (fail, the
//     default, does not say that: TestCLIAppClasses/window);
//   - --bundle: the application is re-pinned to the other release and synced to its digest;
//   - --no-wait: the sync of a Deployment that never becomes ready returns at once, success, with
//     the operation requested, where a waiting sync would run until stuck (TestCLIAppClasses/stuck).
func TestCLIAppSyncOptions(t *testing.T) {
	e := sharedEnv.Get(t)
	env := []string{"KUBE_CONFIG_PATH=" + e.Cluster.Kubeconfig}
	ns := []string{"--argocd-namespace", e.ArgoCD.Namespace}
	later := time.Now().UTC().Add(12 * time.Hour)
	cm := func(v string) map[string]string {
		return map[string]string{"cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok}\ndata: {a: \"" + v + "\"}\n"}
	}
	laterWave := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: later, annotations: {argocd.argoproj.io/sync-wave: \"1\"}}\n"

	t.Run("health-timeout", func(t *testing.T) {
		t.Parallel()
		name := "cli-sync-health-timeout"
		appFixture(t, e, name, e.ArgoCD.ClusterServer, nil, map[string]string{"deploy.yaml": stuckDeployment})
		start := time.Now()
		r := ferry(t, env, "", append([]string{"app", "sync", name, "--format", "json", "--timeout", "3m", "--health-timeout", "5s"}, ns...)...)
		out := decodeOutcome(t, r)
		if want := "not healthy 5s after the sync"; r.code != 5 || out.Class != "stuck" || !strings.Contains(out.Error, want) {
			t.Errorf("ferry app sync --health-timeout 5s = exit %d class %q (%s), want exit 5 class stuck with %q", r.code, out.Class, out.Error, want)
		}
		if took := time.Since(start); took > 90*time.Second {
			t.Errorf("ferry app sync --health-timeout 5s took %s, want it to end well before --timeout 3m", took.Round(time.Second))
		}
	})

	t.Run("window-policy wait", func(t *testing.T) {
		t.Parallel()
		name := "cli-sync-window-wait"
		appFixture(t, e, name, e.ArgoCD.ClusterServer, []window.Spec{{Kind: "allow", Schedule: fmt.Sprintf("0 %d * * *", later.Hour()), Duration: "1h"}}, cm("1"))
		r := ferry(t, env, "", append([]string{"app", "sync", name, "--timeout", "20s", "--window-policy", "wait"}, ns...)...)
		if want := "the window does not open before the timeout"; r.code != 4 || !strings.Contains(r.stderr, "deployment window closed") || !strings.Contains(r.stderr, want) {
			t.Errorf("ferry app sync --window-policy wait = exit %d, stderr %q; want exit 4 with %q", r.code, r.stderr, want)
		}
		r = ferry(t, env, "", append([]string{"app", "sync", name, "--timeout", "20s"}, ns...)...)
		if r.code != 4 || strings.Contains(r.stderr, "does not open before the timeout") {
			t.Errorf("ferry app sync (window policy fail) = exit %d, stderr %q; want exit 4 without the wait's reason", r.code, r.stderr)
		}
	})

	t.Run("bundle", func(t *testing.T) {
		t.Parallel()
		name := "cli-sync-bundle"
		appFixture(t, e, name, e.ArgoCD.ClusterServer, nil, cm("1"))
		v2 := pushAnother(t, e, name, cm("2"))
		_, digest, _ := strings.Cut(v2, "@")
		r := ferry(t, env, "", append([]string{"app", "sync", name, "--format", "json", "--timeout", "3m", "--bundle", v2}, ns...)...)
		out := decodeOutcome(t, r)
		if r.code != 0 || out.Result == nil || out.Result.Revision != digest || out.Result.SyncStatus != "Synced" {
			t.Fatalf("ferry app sync --bundle %s = exit %d %s (%s), want success Synced at %s", v2, r.code, r.stdout, r.stderr, digest)
		}
		r = ferry(t, env, "", append([]string{"app", "status", name, "--format", "json"}, ns...)...)
		var st argocd.Status
		if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || st.TargetRevision != digest {
			t.Errorf("status after --bundle = %s (%v), want targetRevision %s", r.stdout, err, digest)
		}
	})

	t.Run("no-wait", func(t *testing.T) {
		t.Parallel()
		name := "cli-sync-no-wait"
		appFixture(t, e, name, e.ArgoCD.ClusterServer, nil, map[string]string{"deploy.yaml": stuckDeployment, "later.yaml": laterWave})
		t.Cleanup(func() { ferry(t, env, "", append([]string{"app", "terminate", name}, ns...)...) })
		start := time.Now()
		r := ferry(t, env, "", append([]string{"app", "sync", name, "--format", "json", "--no-wait"}, ns...)...)
		out := decodeOutcome(t, r)
		if r.code != 0 || out.Class != "success" || out.Result == nil || out.Result.LastOperation.RequestID == "" {
			t.Errorf("ferry app sync --no-wait = exit %d %s (%s), want success with ferry's request id", r.code, r.stdout, r.stderr)
		}
		if took := time.Since(start); took > 30*time.Second {
			t.Errorf("ferry app sync --no-wait took %s, want it to return without waiting", took.Round(time.Second))
		}
		// The operation it requested runs on: Argo CD waits for the Deployment.
		e.ArgoCD.WaitApplication(t, name, func(a *unstructuredObj) bool {
			op := argocd.StatusOf(a).LastOperation
			return op != nil && op.Phase == "Running" && op.RequestID == out.Result.LastOperation.RequestID
		}, time.Minute)
	})
}

// TestCLIAppWaitRevisionTimeout: `ferry app wait --revision` waits for that digest, not the one
// the application is at, and --timeout ends the wait (exit 5, class timeout) — against an
// application that is Synced and Healthy at its own digest, where a wait without --revision
// succeeds at once.
func TestCLIAppWaitRevisionTimeout(t *testing.T) {
	e := sharedEnv.Get(t)
	env := []string{"KUBE_CONFIG_PATH=" + e.Cluster.Kubeconfig}
	ns := []string{"--argocd-namespace", e.ArgoCD.Namespace}
	name := "cli-wait-revision"
	appFixture(t, e, name, e.ArgoCD.ClusterServer, nil, map[string]string{"cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok}\n"})
	if r := ferry(t, env, "", append([]string{"app", "sync", name, "--timeout", "3m"}, ns...)...); r.code != 0 {
		t.Fatalf("sync = exit %d: %s", r.code, r.stderr)
	}
	if r := ferry(t, env, "", append([]string{"app", "wait", name, "--timeout", "1m"}, ns...)...); r.code != 0 {
		t.Fatalf("wait (the application's digest) = exit %d: %s", r.code, r.stderr)
	}
	other := "sha256:" + strings.Repeat("0", 64)
	start := time.Now()
	r := ferry(t, env, "", append([]string{"app", "wait", name, "--format", "json", "--timeout", "8s", "--revision", other}, ns...)...)
	out := decodeOutcome(t, r)
	if want := "timed out after 8s"; r.code != 5 || out.Class != "timeout" || !strings.Contains(out.Error, want) {
		t.Errorf("ferry app wait --revision %s --timeout 8s = exit %d class %q (%s), want exit 5 class timeout with %q", other, r.code, out.Class, out.Error, want)
	}
	if took := time.Since(start); took < 8*time.Second || took > 40*time.Second {
		t.Errorf("ferry app wait --timeout 8s took %s, want about 8s", took.Round(time.Second))
	}
}

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/ferry-dev/terraform-provider-ferry/bundle"
	"github.com/ferry-dev/terraform-provider-ferry/cmd/ferry/root"
	"github.com/ferry-dev/terraform-provider-ferry/internal/argocd"
	"github.com/ferry-dev/terraform-provider-ferry/internal/fleet"
	"github.com/ferry-dev/terraform-provider-ferry/internal/testenv"
	"github.com/ferry-dev/terraform-provider-ferry/internal/window"
)

// fleetTarget is one environment of a rollout fixture.
type fleetTarget struct {
	name    string
	labels  map[string]string
	windows []window.Spec
	// path is the Application's source path; "does-not-exist" makes every sync fail for real
	// (Argo CD cannot generate the manifests: permanent).
	path string
	// noApp leaves the Application to the target's own Terraform (terraform executor).
	noApp bool
}

// fleetFixture pushes two releases of one ConfigMap to repo (tags 1.0.0 and 2.0.0) and writes an
// environment and (unless noApp) an Application pinned to 1.0.0 for each target. It returns the client, the
// repository (host/path) and the digest of 2.0.0.
func fleetFixture(t *testing.T, e *testenv.Env, repo string, targets []fleetTarget) (*argocd.Client, string, string) {
	t.Helper()
	ctx := context.Background()
	c, err := argocd.New(e.Cluster.RESTConfig(), e.ArgoCD.Namespace)
	if err != nil {
		t.Fatal(err)
	}
	bc, _ := bundle.NewClient(bundle.ClientOptions{PlainHTTP: true, Credentials: bundle.StaticCredentials(nil, nil)})
	ref, _ := bundle.ParseReference(e.Registry.Addr + "/fleet/" + repo)
	digests := map[string]string{}
	for _, v := range []string{"1.0.0", "2.0.0"} {
		dir := writeRelease(t, map[string]string{
			"ferry.yaml": "apiVersion: ferry.dev/v1\nkind: Bundle\nname: shop\nversion: " + v + "\nmanifests: m\n",
			"m/cm.yaml":  "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: shop}\ndata: {version: \"" + v + "\"}\n",
		})
		r := ref
		r.Tag = v
		res, err := bundle.Push(ctx, bc, dir, r, bundle.PushOptions{PackOptions: bundle.PackOptions{Created: time.Unix(1764115200, 0)}})
		if err != nil {
			t.Fatal(err)
		}
		digests[v] = res.Digest
	}
	for _, ft := range targets {
		if err := c.ApplyEnvironment(ctx, fixtureEnvironment(e, ft)); err != nil {
			t.Fatal(err)
		}
		if ft.noApp {
			continue
		}
		if _, err := c.ApplyApplication(ctx, argocd.App{Name: ft.name, Project: ft.name, RepoURL: ref.OCIURL(), Digest: digests["1.0.0"], Path: ft.path,
			Server: e.ArgoCD.ClusterServer, Namespace: ft.name, SyncOptions: []string{argocd.SyncOptionCreateNamespace}}); err != nil {
			t.Fatal(err)
		}
	}
	return c, e.Registry.Addr + "/fleet/" + repo, digests["2.0.0"]
}

// fixtureEnvironment is the environment fleetFixture writes for ft.
func fixtureEnvironment(e *testenv.Env, ft fleetTarget) argocd.Environment {
	return argocd.Environment{
		Name: ft.name, Labels: ft.labels, Namespaces: []string{ft.name}, SourceRepositories: []string{"oci://" + e.Registry.Addr + "/fleet/*"},
		ClusterResources: []string{"Namespace"}, Windows: ft.windows,
		Cluster: argocd.Cluster{Server: e.ArgoCD.ClusterServer, BearerToken: e.Cluster.Token, Insecure: true},
	}
}

// countingExecutor counts the executor's runs per target.
type countingExecutor struct {
	fleet.Executor
	mu    sync.Mutex
	calls map[string]int
}

func counting(ex fleet.Executor) *countingExecutor {
	return &countingExecutor{Executor: ex, calls: map[string]int{}}
}

func (c *countingExecutor) Apply(ctx context.Context, t fleet.Target, b fleet.Bundle, out io.Writer) error {
	c.mu.Lock()
	c.calls[t.Name]++
	c.mu.Unlock()
	return c.Executor.Apply(ctx, t, b, out)
}

func (c *countingExecutor) count(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[name]
}

// testSyncOptions bound each sync of the tests.
var testSyncOptions = argocd.SyncOptions{Timeout: 4 * time.Minute, HealthTimeout: 2 * time.Minute, StuckAfter: 2 * time.Minute}

func targetsOf(fts []fleetTarget) []fleet.Target {
	var out []fleet.Target
	for _, ft := range fts {
		out = append(out, fleet.Target{Name: ft.name, Labels: ft.labels})
	}
	return out
}

// TestFleetRolloutWavesAndWindow rolls a bundle out to 6 environments with the sync executor and
// real Argo CD: a canary wave of 1, then the rest 2 at a time. One environment has a deny window
// that ends within about a minute and a half: it is deferred (not failed, not blocking the rest),
// started by a timer at the window's end, and succeeds. Every Application ends synced to the
// digest and healthy.
func TestFleetRolloutWavesAndWindow(t *testing.T) {
	e := sharedEnv.Get(t)
	// A deny window from the start of this minute for 1 minute, or 2 when less than 40 s of this
	// minute remain, so the rollout reaches the target while it is closed.
	now := time.Now().UTC()
	dur := "1m"
	if now.Second() > 20 {
		dur = "2m"
	}
	deny := []window.Spec{{Kind: "deny", Schedule: fmt.Sprintf("%d %d * * *", now.Minute(), now.Hour()), Duration: dur, TimeZone: "UTC"}}
	fts := []fleetTarget{
		{name: "fw-canary", labels: map[string]string{"fleettest": "fw-canary"}},
		{name: "fw-window", windows: deny},
		{name: "fw-a"}, {name: "fw-b"}, {name: "fw-c"}, {name: "fw-d"},
	}
	c, repo, digest := fleetFixture(t, e, "waves", fts)
	waves, err := fleet.PlanWaves(targetsOf(fts), []fleet.WaveSpec{{Name: "canary", Selector: "fleettest=fw-canary"}})
	if err != nil {
		t.Fatal(err)
	}
	ex := counting(fleet.NewSyncExecutor(c, testSyncOptions))
	var (
		mu       sync.Mutex
		running  int
		maxRun   int
		canaryAt time.Time
		firstRst time.Time
		deferred *time.Time
	)
	rep, err := fleet.Rollout(context.Background(), waves, fleet.Bundle{Reference: repo, Digest: digest}, ex, fleet.RolloutOptions{
		MaxConcurrency: 2, FailureBudget: 2, Deadline: time.Now().Add(10 * time.Minute), RequireApplication: true,
		Observe: fleet.ObserveWith(c, fleet.Bundle{Reference: repo, Digest: digest}), OutputDir: t.TempDir(),
		OnEvent: func(ev fleet.Event) {
			mu.Lock()
			defer mu.Unlock()
			t.Logf("%s %s %s %s", ev.Time.Format(time.TimeOnly), ev.Target, ev.State, ev.Message)
			switch {
			case ev.State == fleet.TargetRunning:
				running++
				maxRun = max(maxRun, running)
				if ev.Wave == "rest" && firstRst.IsZero() {
					firstRst = ev.Time
				}
			case ev.Target != "" && ev.State != fleet.TargetDeferred && ev.State != fleet.TargetPending:
				running--
				if ev.Target == "fw-canary" {
					canaryAt = ev.Time
				}
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range rep.Targets {
		if tr.State != fleet.TargetSucceeded {
			t.Errorf("target %s = %s (%s) %s\n%s", tr.Name, tr.State, tr.Class, tr.Message, tr.OutputTail)
		}
		if ex.count(tr.Name) != 1 {
			t.Errorf("target %s applied %d times, want 1", tr.Name, ex.count(tr.Name))
		}
	}
	if maxRun > 2 {
		t.Errorf("%d targets ran at once, want at most 2", maxRun)
	}
	if firstRst.Before(canaryAt) {
		t.Errorf("wave rest started at %v, before the canary ended at %v", firstRst, canaryAt)
	}
	w := rep.Target("fw-window")
	deferred = w.DeferredUntil
	if deferred == nil || w.Started == nil {
		t.Fatalf("fw-window was not deferred before it ran: %+v", w)
	}
	if w.Started.Before(*deferred) || w.Started.Sub(*deferred) > 60*time.Second {
		t.Errorf("fw-window started at %v, want within 60 s after its window opened at %v", w.Started, deferred)
	}
	for _, n := range []string{"fw-a", "fw-b", "fw-c", "fw-d"} {
		if tr := rep.Target(n); tr.Finished == nil || !tr.Finished.Before(*w.Started) {
			t.Errorf("%s finished at %v, not before the deferred fw-window started (%v): a deferred target must not block its wave", n, tr.Finished, w.Started)
		}
	}
	lives, err := fleet.Observe(context.Background(), c, fleet.Selector{Names: []string{"fw-canary", "fw-window", "fw-a", "fw-b", "fw-c", "fw-d"}}, digest, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range lives {
		if !l.Done {
			t.Errorf("environment %s is not done after the rollout: %+v", l.Environment, l)
		}
	}
}

// TestFleetRolloutBudgetHalt: a target that fails for real (its Application's path does not exist
// in the bundle) takes its wave past the failure budget: the rollout halts, the targets after it
// are halted and never applied, and the report names the failure with its class.
func TestFleetRolloutBudgetHalt(t *testing.T) {
	e := sharedEnv.Get(t)
	fts := []fleetTarget{{name: "fh-canary"}, {name: "fh-bad", path: "does-not-exist"}, {name: "fh-x"}, {name: "fh-y"}, {name: "fh-z"}}
	c, repo, digest := fleetFixture(t, e, "halt", fts)
	waves, _ := fleet.PlanWaves(targetsOf(fts), []fleet.WaveSpec{{Name: "canary", Count: 1}})
	ex := counting(fleet.NewSyncExecutor(c, testSyncOptions))
	var failedAt, haltedAt time.Time
	rep, err := fleet.Rollout(context.Background(), waves, fleet.Bundle{Reference: repo, Digest: digest}, ex, fleet.RolloutOptions{
		MaxConcurrency: 1, FailureBudget: 2, RequireApplication: true, Observe: fleet.ObserveWith(c, fleet.Bundle{Reference: repo, Digest: digest}),
		OnEvent: func(ev fleet.Event) {
			t.Logf("%s %s %s %s", ev.Time.Format(time.TimeOnly), ev.Target, ev.State, ev.Message)
			if ev.State == fleet.TargetFailed {
				failedAt = ev.Time
			}
			if strings.HasPrefix(ev.Message, "halted:") {
				haltedAt = ev.Time
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]fleet.TargetState{"fh-canary": fleet.TargetSucceeded, "fh-bad": fleet.TargetFailed, "fh-x": fleet.TargetHalted, "fh-y": fleet.TargetHalted, "fh-z": fleet.TargetHalted}
	for n, s := range want {
		if got := rep.Target(n); got.State != s {
			t.Errorf("target %s = %s (%s) %s, want %s", n, got.State, got.Class, got.Message, s)
		}
	}
	for _, n := range []string{"fh-x", "fh-y", "fh-z"} {
		if ex.count(n) != 0 {
			t.Errorf("%s was applied after the halt", n)
		}
	}
	fails := rep.Failures()
	if len(fails) != 1 || fails[0].Class != string(argocd.ClassPermanent) || fails[0].Message == "" {
		t.Errorf("failures = %+v, want fh-bad with class permanent", fails)
	}
	if !rep.Halted || haltedAt.IsZero() || haltedAt.Sub(failedAt) > 60*time.Second {
		t.Errorf("halted %v at %v, the failure at %v: want a halt within 60 s", rep.Halted, haltedAt, failedAt)
	}
}

// TestFleetRolloutResume cancels a rollout after two targets succeeded and runs it again: the
// finished targets are read as done from their live Applications and not applied again.
func TestFleetRolloutResume(t *testing.T) {
	e := sharedEnv.Get(t)
	fts := []fleetTarget{{name: "fr-a"}, {name: "fr-b"}, {name: "fr-c"}, {name: "fr-d"}}
	c, repo, digest := fleetFixture(t, e, "resume", fts)
	waves, _ := fleet.PlanWaves(targetsOf(fts), nil)
	b := fleet.Bundle{Reference: repo, Digest: digest}

	ctx, cancel := context.WithCancel(context.Background())
	first := counting(fleet.NewSyncExecutor(c, testSyncOptions))
	succeeded := 0
	rep, err := fleet.Rollout(ctx, waves, b, first, fleet.RolloutOptions{MaxConcurrency: 1, RequireApplication: true, Observe: fleet.ObserveWith(c, fleet.Bundle{Reference: repo, Digest: digest}),
		OnEvent: func(ev fleet.Event) {
			if ev.State == fleet.TargetSucceeded {
				if succeeded++; succeeded == 2 {
					cancel()
				}
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Interrupted || rep.Counts[fleet.TargetSucceeded] != 2 || rep.Counts[fleet.TargetHalted] != 2 {
		t.Fatalf("interrupted rollout: interrupted %v, counts %v", rep.Interrupted, rep.Counts)
	}
	done := map[string]bool{}
	for _, tr := range rep.Targets {
		if tr.State == fleet.TargetSucceeded {
			done[tr.Name] = true
		}
	}

	second := counting(fleet.NewSyncExecutor(c, testSyncOptions))
	rep, err = fleet.Rollout(context.Background(), waves, b, second, fleet.RolloutOptions{MaxConcurrency: 1, RequireApplication: true, Observe: fleet.ObserveWith(c, b)})
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range rep.Targets {
		if tr.State != fleet.TargetSucceeded {
			t.Errorf("resumed: %s = %s %s", tr.Name, tr.State, tr.Message)
		}
		if done[tr.Name] && (second.count(tr.Name) != 0 || !tr.AlreadyDone) {
			t.Errorf("resumed: %s finished in the first run but was applied %d times (alreadyDone %v)", tr.Name, second.count(tr.Name), tr.AlreadyDone)
		}
		if !done[tr.Name] && second.count(tr.Name) != 1 {
			t.Errorf("resumed: %s applied %d times, want 1", tr.Name, second.count(tr.Name))
		}
	}
}

func decodeReport(t *testing.T, r result) fleet.Report {
	t.Helper()
	var rep fleet.Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("report is not JSON: %v\n%s\n%s", err, r.stdout, r.stderr)
	}
	return rep
}

// TestCLIFleetRolloutLock runs `ferry fleet rollout` with a fleet.yaml and the sync executor:
// while another holder's lease is fresh the rollout is refused (exit 6) naming the holder; a
// rollout killed with kill -9 leaves its lease, which refuses the next one until it expires, after
// which the rerun proceeds and does not apply again what the killed one finished. A sync-only
// rollout by selector then finds everything already done.
func TestCLIFleetRolloutLock(t *testing.T) {
	e := sharedEnv.Get(t)
	fts := []fleetTarget{{name: "fl-a", labels: map[string]string{"fleettest": "lock"}}, {name: "fl-b", labels: map[string]string{"fleettest": "lock"}},
		{name: "fl-c", labels: map[string]string{"fleettest": "lock"}}}
	c, repo, digest := fleetFixture(t, e, "lock", fts)
	dir := t.TempDir()
	spec := filepath.Join(dir, "fleet.yaml")
	writeText(t, spec, "apiVersion: ferry.dev/v1\nkind: Fleet\nname: locktest\ntargets:\n  - name: fl-a\n  - name: fl-b\n  - name: fl-c\n"+
		"rollout:\n  maxConcurrency: 1\nexecutor:\n  type: sync\n  timeout: 4m\n")
	env := []string{"DOCKER_CONFIG=" + t.TempDir(), "KUBE_CONFIG_PATH=" + e.Cluster.Kubeconfig}
	args := []string{"fleet", "rollout", repo + ":2.0.0", "-f", spec, "--plain-http", "--argocd-namespace", e.ArgoCD.Namespace, "--format", "json"}
	leases := c.Dynamic().Resource(fleet.LeaseGVR).Namespace(e.ArgoCD.Namespace)
	writeLease := func(holder string, renewed time.Time) {
		t.Helper()
		leases.Delete(context.Background(), fleet.LeaseName("locktest"), metav1.DeleteOptions{})
		u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
			"metadata": map[string]any{"name": fleet.LeaseName("locktest")},
			"spec": map[string]any{"holderIdentity": holder, "leaseDurationSeconds": int64(30),
				"renewTime": renewed.UTC().Format(metav1.RFC3339Micro), "acquireTime": renewed.UTC().Format(metav1.RFC3339Micro)}}}
		if _, err := leases.Create(context.Background(), u, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	// Held and fresh: refused, naming the holder.
	writeLease("ci-job-42", time.Now())
	r := ferry(t, env, "", args...)
	if r.code != 6 || !strings.Contains(r.stderr, `held by "ci-job-42"`) {
		t.Fatalf("rollout while the lease is held = exit %d\n%s", r.code, r.stderr)
	}

	// Killed with kill -9 once the first target succeeded: its lease stays and refuses a rerun.
	leases.Delete(context.Background(), fleet.LeaseName("locktest"), metav1.DeleteOptions{})
	textArgs := append(append([]string(nil), args[:len(args)-2]...), "--format", "text")
	cmd, _ := startFerry(t, env, textArgs...)
	deadline := time.Now().Add(3 * time.Minute)
	for {
		lives, err := fleet.Observe(context.Background(), c, fleet.Selector{Names: []string{"fl-a"}}, digest, time.Now())
		if err == nil && len(lives) == 1 && lives[0].Done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("fl-a did not become done within 3 minutes of the rollout's start")
		}
		time.Sleep(200 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	killed := time.Now()
	r = ferry(t, env, "", args...)
	if r.code != 6 || !strings.Contains(r.stderr, "another rollout is running") {
		t.Fatalf("rollout right after a kill -9 = exit %d, want 6 (the lease is still fresh)\n%s", r.code, r.stderr)
	}
	// The lease expires 30 s after its last renewal.
	time.Sleep(time.Until(killed.Add(31 * time.Second)))
	r = ferry(t, env, "", args...)
	if r.code != 0 {
		t.Fatalf("rollout after the lease expired = exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	rep := decodeReport(t, r)
	if a := rep.Target("fl-a"); a == nil || a.State != fleet.TargetSucceeded || !a.AlreadyDone {
		t.Errorf("fl-a after the resume = %+v, want succeeded and already done", a)
	}
	if rep.Counts[fleet.TargetSucceeded] != 3 {
		t.Errorf("resumed rollout counts = %v", rep.Counts)
	}
	if _, err := leases.Get(context.Background(), fleet.LeaseName("locktest"), metav1.GetOptions{}); err == nil {
		t.Errorf("the lease is still there after the rollout ended")
	}

	// Sync-only, by selector: everything is already done.
	r = ferry(t, env, "", "fleet", "rollout", repo+":2.0.0", "-l", "fleettest=lock", "--plain-http", "--argocd-namespace", e.ArgoCD.Namespace, "--format", "json")
	if r.code != 0 {
		t.Fatalf("sync-only rollout = exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	rep = decodeReport(t, r)
	if len(rep.Targets) != 3 || rep.Counts[fleet.TargetSucceeded] != 3 || rep.Executor != "sync" {
		t.Errorf("sync-only report = %+v", rep)
	}
	for _, tr := range rep.Targets {
		if !tr.AlreadyDone {
			t.Errorf("sync-only: %s was applied again", tr.Name)
		}
	}
}

// TestCLIFleetRolloutFailure: a rollout with a failing target exits with its class's code (2 for
// permanent) and the text report names the failure with its class; nothing ANSI is written off a
// terminal.
func TestCLIFleetRolloutFailure(t *testing.T) {
	e := sharedEnv.Get(t)
	fts := []fleetTarget{{name: "ff-bad", labels: map[string]string{"fleettest": "fail"}, path: "does-not-exist"}, {name: "ff-ok", labels: map[string]string{"fleettest": "fail"}}}
	_, repo, _ := fleetFixture(t, e, "fail", fts)
	env := []string{"DOCKER_CONFIG=" + t.TempDir(), "KUBE_CONFIG_PATH=" + e.Cluster.Kubeconfig}
	r := ferry(t, env, "", "fleet", "rollout", repo+":2.0.0", "-l", "fleettest=fail", "--plain-http", "--argocd-namespace", e.ArgoCD.Namespace,
		"--max-concurrency", "1", "--failure-budget", "0")
	if r.code != 2 {
		t.Fatalf("rollout with a failing target = exit %d, want 2\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"ff-bad", "failed", "permanent", "ff-ok", "halted", "Halted: wave all: 1 of 2 targets failed"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("report does not say %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout+r.stderr, "\x1b[") {
		t.Errorf("ANSI escapes off a terminal:\n%q", r.stderr)
	}
	if !strings.Contains(r.stderr, "Error: 1 of 2 targets failed") {
		t.Errorf("stderr = %s", r.stderr)
	}
}

// TestCLIFleetRolloutExamples runs the examples of `ferry fleet rollout --help` with the rewrites
// of TestCLIHelpExamples (registry.example.com/shop/bundle is a repository of the test registry,
// "sha256:…" the digest of its tag 1.4.0, ./ paths the test's directory, --plain-http and
// --argocd-namespace added), on a fixture they need: an environment labelled ring=early whose
// Application reads that repository, and a ./fleet.yaml naming it with the sync executor. Each must
// exit 0.
func TestCLIFleetRolloutExamples(t *testing.T) {
	e := sharedEnv.Get(t)
	var examples []string
	for _, ex := range helpExamples(root.New("test")) {
		if strings.HasPrefix(ex, "ferry fleet rollout ") {
			examples = append(examples, ex)
		}
	}
	if len(examples) != 3 {
		t.Fatalf("ferry fleet rollout --help has %d examples, want the 3 this test runs:\n%s", len(examples), strings.Join(examples, "\n"))
	}
	_, repo, _ := fleetFixture(t, e, "examples", []fleetTarget{{name: "fx-acme", labels: map[string]string{"ring": "early"}}})
	// The examples' tag 1.4.0 is the fixture's 2.0.0 release.
	ctx := context.Background()
	bc, _ := bundle.NewClient(bundle.ClientOptions{PlainHTTP: true, Credentials: bundle.StaticCredentials(nil, nil)})
	dir := writeRelease(t, map[string]string{
		"ferry.yaml": "apiVersion: ferry.dev/v1\nkind: Bundle\nname: shop\nversion: 1.4.0\nmanifests: m\n",
		"m/cm.yaml":  "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: shop}\ndata: {version: \"1.4.0\"}\n",
	})
	ref, _ := bundle.ParseReference(repo + ":1.4.0")
	res, err := bundle.Push(ctx, bc, dir, ref, bundle.PushOptions{PackOptions: bundle.PackOptions{Created: time.Unix(1764115200, 0)}})
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	writeText(t, filepath.Join(work, "fleet.yaml"), "apiVersion: ferry.dev/v1\nkind: Fleet\nname: examples\ntargets:\n  - name: fx-acme\nexecutor:\n  type: sync\n")
	env := []string{"DOCKER_CONFIG=" + t.TempDir(), "KUBE_CONFIG_PATH=" + e.Cluster.Kubeconfig}
	for _, ex := range examples {
		var args []string
		for _, w := range shellWords(t, ex)[1:] {
			w = strings.ReplaceAll(w, "registry.example.com/shop/bundle", repo)
			w = strings.ReplaceAll(w, "sha256:…", res.Digest)
			if strings.HasPrefix(w, "./") {
				w = work + w[1:]
			}
			args = append(args, w)
		}
		args = append(args, "--plain-http", "--argocd-namespace", e.ArgoCD.Namespace)
		r := ferry(t, env, "", args...)
		if r.code != 0 {
			t.Fatalf("example %q (ferry %s) = exit %d\n%s%s", ex, strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
	}

	// On a terminal the counts are redrawn in place below the event lines, and erased before the
	// report.
	out := ferryPTY(t, env, "fleet", "rollout", repo+":1.4.0", "-f", filepath.Join(work, "fleet.yaml"), "--plain-http", "--argocd-namespace", e.ArgoCD.Namespace)
	for _, want := range []string{"fx-acme [all] succeeded: already done", "1 succeeded", "\r\x1b[J", "TARGET"} {
		if !strings.Contains(out, want) {
			t.Errorf("terminal session does not show %q:\n%q", want, out)
		}
	}
}

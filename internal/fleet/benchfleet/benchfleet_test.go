package benchfleet

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/rest"

	"github.com/ferry-dev/terraform-provider-ferry/bundle"
	"github.com/ferry-dev/terraform-provider-ferry/internal/argocd"
	"github.com/ferry-dev/terraform-provider-ferry/internal/fleet"
	"github.com/ferry-dev/terraform-provider-ferry/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// counter counts the requests a client sends, and apart the GETs of the Application by the
// name polled (a sync polls its Application until the controller reconciled it and while it
// follows the operation: their number follows the controller's timing).
type counter struct {
	next  http.RoundTripper
	poll  string // a path: GETs of it are counted in polls
	n     atomic.Int64
	polls atomic.Int64
}

func (c *counter) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodGet && r.URL.Path == c.poll {
		c.polls.Add(1)
	} else {
		c.n.Add(1)
	}
	return c.next.RoundTrip(r)
}

// WrappedRoundTripper lets client-go cancel requests through the counter.
func (c *counter) WrappedRoundTripper() http.RoundTripper { return c.next }

// TestBenchFleet (make bench-fleet; skipped unless FERRY_BENCH_FLEET=1) grows a fleet of N = 10,
// 100 and 1,000 (up to FERRY_BENCH_FLEET_N, default 100) environments, each with an Application
// that Argo CD's automated sync keeps synced, on one real kube-apiserver and Argo CD. At each N it
// measures the API requests of one more customer's apply, refresh and destroy, step by step, and
// the latency of fleet status over the whole fleet: fleet.Observe in the process, and the ferry
// binary's `ferry fleet status`. Then, at the largest N, two rollouts of the whole fleet (rollouts;
// FERRY_BENCH_FLEET_ROLLOUTS=0 leaves them out).
func TestBenchFleet(t *testing.T) {
	if os.Getenv("FERRY_BENCH_FLEET") != "1" {
		t.Skip("set FERRY_BENCH_FLEET=1 (make bench-fleet) to run the fleet benchmark")
	}
	limit := 100
	if v := os.Getenv("FERRY_BENCH_FLEET_N"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 10 {
			t.Fatalf("FERRY_BENCH_FLEET_N=%q: want a number of environments, at least 10", v)
		}
		limit = n
	}
	var sizes []int
	for _, n := range []int{10, 100, 1000} {
		if n <= limit {
			sizes = append(sizes, n)
		}
	}
	// The simulated kubelet runs the crash-looping Deployment of the failing rollout.
	e := testenv.Start(t, testenv.Options{Registry: true, ArgoCD: true, ClusterOptions: testenv.ClusterOptions{SimulatedKubelet: true}})
	ctx := context.Background()
	c, err := argocd.New(e.Cluster.RESTConfig(), e.ArgoCD.Namespace)
	if err != nil {
		t.Fatal(err)
	}
	digest, repoURL := pushBundle(t, e, "1.0.0", false)
	ferryBin := filepath.Join(t.TempDir(), "ferry")
	if out, err := exec.Command("go", "build", "-o", ferryBin, "github.com/ferry-dev/terraform-provider-ferry/cmd/ferry").CombinedOutput(); err != nil {
		t.Fatalf("build ferry: %v\n%s", err, out)
	}

	tf := testenv.Terraform(t)
	_, cliConfig := testenv.ProviderMirror(t, "registry.terraform.io")

	fmt.Printf("bench-fleet: %d CPUs, GOMAXPROCS %d, N up to %d\n", runtime.NumCPU(), runtime.GOMAXPROCS(0), limit)
	have := 0
	var report []string
	for _, n := range sizes {
		start := time.Now()
		grow(t, c, e, have, n, repoURL, digest)
		have = n
		created := time.Since(start)
		start = time.Now()
		done := settle(t, c, n, digest)
		settled := time.Since(start)
		steps, total := customer(t, e, repoURL, digest, fmt.Sprintf("bench-customer-%d", n))
		applyRSS, destroyRSS := providerRSS(t, e, tf, cliConfig, repoURL, digest, fmt.Sprintf("bench-tf-%d", n))
		observe := latencies(5, func() {
			ls, err := fleet.Observe(ctx, c, fleet.Selector{}, digest, time.Now())
			if err != nil || len(ls) != n {
				t.Fatalf("Observe() = %d environments, %v; want %d", len(ls), err, n)
			}
		})
		cli := latencies(3, func() {
			cmd := exec.Command(ferryBin, "fleet", "status", "--kubeconfig", e.Cluster.Kubeconfig, "--argocd-namespace", e.ArgoCD.Namespace)
			cmd.Stdout, cmd.Stderr = nil, os.Stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("ferry fleet status: %v", err)
			}
		})
		line := fmt.Sprintf("N=%-5d created in %-6s synced %d/%d in %-6s | one customer: %d requests besides the GETs of its Application by name (%s) | provider peak RSS: apply %d MB, destroy %d MB | fleet.Observe median %s max %s | ferry fleet status median %s max %s",
			n, created.Round(time.Second), done, n, settled.Round(time.Second), total, steps, applyRSS>>20, destroyRSS>>20, observe[len(observe)/2], observe[len(observe)-1],
			cli[len(cli)/2], cli[len(cli)-1])
		fmt.Println("bench-fleet: " + line)
		report = append(report, line)
	}
	// The rollouts change the fleet: they run once, at the largest N (FERRY_BENCH_FLEET_ROLLOUTS=0
	// leaves them out).
	if os.Getenv("FERRY_BENCH_FLEET_ROLLOUTS") != "0" {
		line := rollouts(t, e, c, have, repoURL, digest)
		fmt.Println("bench-fleet: " + line)
		report = append(report, line)
	}
	fmt.Println("bench-fleet summary:\n  " + strings.Join(report, "\n  "))
}

// environment is the ferry environment of customer name.
func environment(e *testenv.Env, name string) argocd.Environment {
	return argocd.Environment{
		Name: name, Labels: map[string]string{"tier": "bench"}, Namespaces: []string{name},
		SourceRepositories: []string{"oci://" + e.Registry.Addr + "/bench/*"}, ClusterResources: []string{"Namespace"},
		Cluster: argocd.Cluster{Server: e.ArgoCD.ClusterServer, BearerToken: e.Cluster.Token, Insecure: true},
	}
}

func app(e *testenv.Env, name, repoURL, digest string, auto bool) argocd.App {
	return argocd.App{Name: name, Project: name, RepoURL: repoURL, Digest: digest, Server: e.ArgoCD.ClusterServer, Namespace: name,
		SyncOptions: []string{argocd.SyncOptionCreateNamespace}, CascadeDelete: true, AutoSync: auto}
}

// pushBundle pushes release version of a one-ConfigMap bundle with a second directory, crash/,
// which holds a ConfigMap or, with crash, also a Deployment whose container exits at once (a crash
// loop on the simulated kubelet); it returns its digest and repoURL.
func pushBundle(t *testing.T, e *testenv.Env, version string, crash bool) (string, string) {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"ferry.yaml":      "apiVersion: ferry.dev/v1\nkind: Bundle\nname: shop\nversion: " + version + "\nmanifests: m\n",
		"m/cm.yaml":       "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: shop}\ndata: {version: \"" + version + "\"}\n",
		"m/crash/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: shop}\ndata: {version: \"" + version + "\"}\n",
	}
	if crash {
		files["m/crash/deploy.yaml"] = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: api}\nspec:\n  replicas: 1\n  selector: {matchLabels: {app: api}}\n" +
			"  template:\n    metadata: {labels: {app: api}}\n    spec:\n      containers:\n        - {name: api, image: registry.example.com/shop/api:" + version + ", command: [\"false\"]}\n"
	}
	for p, content := range files {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, p), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bc, _ := bundle.NewClient(bundle.ClientOptions{PlainHTTP: true, Credentials: bundle.StaticCredentials(nil, nil)})
	ref, _ := bundle.ParseReference(e.Registry.Addr + "/bench/shop")
	res, err := bundle.Push(context.Background(), bc, dir, ref, bundle.PushOptions{PackOptions: bundle.PackOptions{Created: time.Unix(1764115200, 0)}})
	if err != nil {
		t.Fatal(err)
	}
	return res.Digest, ref.OCIURL()
}

// grow adds the environments from..to-1 with an automatically synced Application each.
func grow(t *testing.T, c *argocd.Client, e *testenv.Env, from, to int, repoURL, digest string) {
	t.Helper()
	var g errgroup.Group
	g.SetLimit(16)
	for i := from; i < to; i++ {
		g.Go(func() error {
			name := fmt.Sprintf("bench-%04d", i)
			if err := c.ApplyEnvironment(context.Background(), environment(e, name)); err != nil {
				return err
			}
			_, err := c.ApplyApplication(context.Background(), app(e, name, repoURL, digest, true))
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
}

// settle waits, up to 20 minutes, until Argo CD has synced the whole fleet, and returns how many
// Applications are done.
func settle(t *testing.T, c *argocd.Client, n int, digest string) int {
	t.Helper()
	deadline := time.Now().Add(20 * time.Minute)
	for {
		ls, err := fleet.Observe(context.Background(), c, fleet.Selector{}, digest, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		done := fleet.Count(ls).Done
		if done >= n || time.Now().After(deadline) {
			return done
		}
		time.Sleep(5 * time.Second)
	}
}

// customer runs one customer's apply, refresh and destroy with a counting client and returns the
// requests of each step and their total.
func customer(t *testing.T, e *testenv.Env, repoURL, digest, name string) (string, int64) {
	t.Helper()
	ctx := context.Background()
	cfg := rest.CopyConfig(e.Cluster.RESTConfig())
	ct := &counter{poll: "/apis/argoproj.io/v1alpha1/namespaces/" + e.ArgoCD.Namespace + "/applications/" + name}
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { ct.next = rt; return ct }
	c, err := argocd.New(cfg, e.ArgoCD.Namespace)
	if err != nil {
		t.Fatal(err)
	}
	var steps []string
	step := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s %s: %v", what, name, err)
		}
		steps = append(steps, fmt.Sprintf("%s %d", what, ct.n.Swap(0)))
		if polls := ct.polls.Swap(0); polls > 0 {
			steps[len(steps)-1] += fmt.Sprintf(" (+%d GETs of the Application)", polls)
		}
	}
	var total int64
	step("ApplyEnvironment", c.ApplyEnvironment(ctx, environment(e, name)))
	_, err = c.ReadEnvironment(ctx, name)
	step("ReadEnvironment", err)
	_, err = c.RepairOverrides(ctx, name)
	step("RepairOverrides", err)
	a := app(e, name, repoURL, digest, false)
	_, err = c.Sync(ctx, a, true, argocd.SyncOptions{Timeout: 5 * time.Minute})
	step("Sync", err)
	_, err = c.Status(ctx, name)
	step("Status", err)
	step("DeleteApplication", c.DeleteApplication(ctx, name, true))
	step("DeleteEnvironment", c.DeleteEnvironment(ctx, name))
	for _, s := range steps {
		f := strings.Fields(s)
		n, _ := strconv.ParseInt(f[1], 10, 64)
		total += n
	}
	return strings.Join(steps, ", "), total
}

// latencies runs fn n times and returns the durations, sorted.
func latencies(n int, fn func()) []time.Duration {
	var ds []time.Duration
	for range n {
		start := time.Now()
		fn()
		ds = append(ds, time.Since(start).Round(time.Millisecond))
	}
	slices.Sort(ds)
	return ds
}

// providerRSS applies and destroys one more customer (ferry_environment and ferry_application)
// with Terraform and ferry's provider, and returns the provider process's peak resident set size
// during each: the largest VmHWM of a terraform-provider-ferry process started by that Terraform,
// read from /proc every 20 ms while Terraform runs (VmHWM only grows, so the last reading holds all
// but the last 20 ms).
func providerRSS(t *testing.T, e *testenv.Env, tf, cliConfig, repoURL, digest, name string) (apply, destroy int64) {
	t.Helper()
	dir := t.TempDir()
	root := testenv.ProviderConfig(e) + fmt.Sprintf(`terraform {
  required_providers {
    ferry = { source = "ferry-dev/ferry" }
  }
}

resource "ferry_environment" "env" {
  name                = %[2]q
  namespaces          = [%[2]q]
  source_repositories = ["oci://%[1]s/bench/*"]
  cluster_resources   = ["Namespace"]
  labels              = { tier = "bench" }
  cluster {
    server          = %[3]q
    bearer_token_wo = %[4]q
    insecure        = true
  }
}

resource "ferry_application" "app" {
  name        = %[2]q
  environment = ferry_environment.env.project
  bundle      = %[5]q
  namespace   = %[2]q
  sync_options {
    create_namespace = true
  }
}
`, e.Registry.Addr, name, e.ArgoCD.ClusterServer, e.Cluster.Token,
		strings.TrimPrefix(repoURL, "oci://")+"@"+digest)
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(root), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) int64 {
		cmd := testenv.TerraformCommand(tf, dir, cliConfig, args...)
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		var peak int64
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case err := <-exited:
				if err != nil {
					t.Fatalf("terraform %s: %v\n%s", strings.Join(args, " "), err, out.String())
				}
				return peak
			case <-tick.C:
				peak = max(peak, providerHWM(cmd.Process.Pid))
			}
		}
	}
	run("init", "-input=false", "-no-color")
	apply = run("apply", "-auto-approve", "-input=false", "-no-color")
	destroy = run("destroy", "-auto-approve", "-input=false", "-no-color")
	return apply, destroy
}

// providerHWM returns the largest VmHWM, in bytes, of the running terraform-provider-ferry
// processes whose parent is the process parent (Terraform), 0 when there is none.
func providerHWM(parent int) int64 {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	var peak int64
	for _, p := range procs {
		cmdline, err := os.ReadFile(p)
		if err != nil || !strings.Contains(string(cmdline), "terraform-provider-ferry") {
			continue
		}
		// /proc/PID/stat: "pid (comm) state ppid ..."; comm may hold spaces, so cut after ')'.
		stat, err := os.ReadFile(filepath.Join(filepath.Dir(p), "stat"))
		if err != nil {
			continue
		}
		_, rest, _ := strings.Cut(string(stat), ") ")
		if f := strings.Fields(rest); len(f) < 2 || f[1] != strconv.Itoa(parent) {
			continue
		}
		status, err := os.ReadFile(filepath.Join(filepath.Dir(p), "status"))
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(status), "\n") {
			if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				peak = max(peak, kb<<10)
			}
		}
	}
	return peak
}

// rollouts runs two sync-only rollouts over the whole fleet of n (fleet.Rollout with the sync
// executor, a canary of 1% then the rest, 50 at a time, Argo CD's automated sync turned off first
// so that the rollout's syncs are the only ones):
//
//   - to a release that changes every Application's ConfigMap: the wall time, the controller's own
//     time (the union of the operations' startedAt..finishedAt, one-second resolution) and the
//     difference, ferry's orchestration overhead; per target, its run minus its operation;
//   - to a release whose crash/ directory adds a crash-looping Deployment, with 3% of the
//     Applications reading crash/: they fail for real (permanent: crash-looping), the rest wave
//     crosses the 2% budget; the halt latency is the time from the failure that crossed it to
//     the halt, the drain the time from the halt to the end of the last target that was running
//     then; no target may start after the halt.
func rollouts(t *testing.T, e *testenv.Env, c *argocd.Client, n int, repoURL, digestA string) string {
	t.Helper()
	ctx := context.Background()
	names := make([]string, n)
	crash := map[string]bool{}
	for i := range names {
		names[i] = fmt.Sprintf("bench-%04d", i)
	}
	k := (n*3 + 99) / 100 // 3%, spread over the fleet
	for i := range k {
		crash[names[i*n/k+n/(2*k)]] = true
	}
	var g errgroup.Group
	g.SetLimit(16)
	for _, name := range names {
		g.Go(func() error {
			a := app(e, name, repoURL, digestA, false)
			if crash[name] {
				a.Path = "crash"
			}
			_, err := c.ApplyApplication(ctx, a)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	var targets []fleet.Target
	for _, name := range names {
		targets = append(targets, fleet.Target{Name: name})
	}
	waves, err := fleet.PlanWaves(targets, []fleet.WaveSpec{{Name: "canary", Percent: 1}})
	if err != nil {
		t.Fatal(err)
	}
	run := func(b fleet.Bundle, onEvent func(fleet.Event)) (*fleet.Report, time.Duration) {
		ex := fleet.NewSyncExecutor(c, argocd.SyncOptions{Timeout: 15 * time.Minute, PickupTimeout: 10 * time.Minute})
		start := time.Now()
		rep, err := fleet.Rollout(ctx, waves, b, ex, fleet.RolloutOptions{MaxConcurrency: 50, FailureBudget: 2, RequireApplication: true,
			Observe: fleet.ObserveWith(c, b), OnEvent: onEvent})
		if err != nil {
			t.Fatal(err)
		}
		return rep, time.Since(start)
	}
	ref := strings.TrimPrefix(repoURL, "oci://")

	// 1. Every target succeeds.
	digestB, _ := pushBundle(t, e, "2.0.0", false)
	rep, wall := run(fleet.Bundle{Reference: ref, Digest: digestB}, nil)
	if rep.Counts[fleet.TargetSucceeded] != n {
		t.Fatalf("rollout to 2.0.0: %v, want all %d succeeded", rep.Counts, n)
	}
	type span struct{ from, to time.Time }
	var ops []span
	var perTarget []time.Duration
	for _, tr := range rep.Targets {
		live, err := c.GetApplication(ctx, tr.Name)
		if err != nil {
			t.Fatal(err)
		}
		op := argocd.StatusOf(live).LastOperation
		if op == nil || tr.Started == nil || tr.Finished == nil {
			t.Fatalf("%s: no operation (%v) or no run (%v..%v)", tr.Name, op, tr.Started, tr.Finished)
		}
		from, err1 := time.Parse(time.RFC3339, op.StartedAt)
		to, err2 := time.Parse(time.RFC3339, op.FinishedAt)
		if err1 != nil || err2 != nil {
			t.Fatalf("%s: operation %q..%q", tr.Name, op.StartedAt, op.FinishedAt)
		}
		ops = append(ops, span{from, to})
		perTarget = append(perTarget, tr.Finished.Sub(*tr.Started)-to.Sub(from))
	}
	slices.SortFunc(ops, func(a, b span) int { return a.from.Compare(b.from) })
	var busy time.Duration
	cur := ops[0]
	for _, o := range ops[1:] {
		if o.from.After(cur.to) {
			busy += cur.to.Sub(cur.from)
			cur = o
		} else if o.to.After(cur.to) {
			cur.to = o.to
		}
	}
	busy += cur.to.Sub(cur.from)
	slices.Sort(perTarget)

	// 2. 3% fail for real; the rest wave halts.
	digestC, _ := pushBundle(t, e, "3.0.0", true)
	var (
		mu                        sync.Mutex
		failedAt, haltAt, lastEnd time.Time
		startedAfterHalt          []string
	)
	rep2, wall2 := run(fleet.Bundle{Reference: ref, Digest: digestC}, func(ev fleet.Event) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case strings.HasPrefix(ev.Message, "halted:"):
			haltAt = ev.Time
		case ev.State == fleet.TargetFailed && haltAt.IsZero():
			failedAt = ev.Time // the last failure before the halt is the one that crossed the budget
		case ev.State == fleet.TargetRunning && !haltAt.IsZero() && ev.Time.After(haltAt):
			startedAfterHalt = append(startedAfterHalt, ev.Target)
		}
		if ev.Target != "" && ev.State != fleet.TargetRunning && ev.State != fleet.TargetHalted && ev.Time.After(lastEnd) {
			lastEnd = ev.Time
		}
	})
	if len(startedAfterHalt) > 0 {
		t.Errorf("rollout to 3.0.0: %d targets started after the halt: %v", len(startedAfterHalt), startedAfterHalt)
	}
	if !rep2.Halted || haltAt.IsZero() {
		t.Fatalf("rollout to 3.0.0 with %d crash-looping targets did not halt: %v", len(crash), rep2.Counts)
	}
	for _, f := range rep2.Failures() {
		if !crash[f.Name] || f.Class != string(argocd.ClassPermanent) {
			t.Errorf("rollout to 3.0.0: %s failed (%s): %s", f.Name, f.Class, f.Message)
		}
	}
	return fmt.Sprintf("N=%d sync rollout (50 at a time, canary 1%%): wall %s, the controller's operations %s, orchestration overhead %s; per target, its run minus its operation: median %s, p95 %s | "+
		"with %d crash-looping targets: halted after %s (%d failed, %d succeeded, %d halted), halt latency %s, running targets drained %s after the halt",
		n, wall.Round(time.Second), busy.Round(time.Second), (wall - busy).Round(time.Second), perTarget[len(perTarget)/2].Round(10*time.Millisecond),
		perTarget[len(perTarget)*95/100].Round(10*time.Millisecond), len(crash), wall2.Round(time.Second), rep2.Counts[fleet.TargetFailed],
		rep2.Counts[fleet.TargetSucceeded], rep2.Counts[fleet.TargetHalted], haltAt.Sub(failedAt).Round(time.Millisecond), max(lastEnd.Sub(haltAt), 0).Round(time.Millisecond))
}

package fleet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-dev/terraform-provider-ferry/internal/argocd"
	"github.com/ferry-dev/terraform-provider-ferry/internal/window"
)

// fakeFleet stands in for the live Applications and an executor, for the engine's logic. The
// integration tests with real Argo CD are in cmd/ferry/fleet_rollout_test.go.
type fakeFleet struct {
	mu      sync.Mutex
	done    map[string]bool      // Application synced to the digest and healthy
	missing map[string]bool      // no Application
	opensAt map[string]time.Time // window closed until then (zero time: never opens)
	fail    map[string]error     // the executor's error
	live    map[string]Live      // what Observe says after a failed apply (FailureClass …)
	block   map[string]chan struct{}
	calls   map[string]int
	starts  []string
	ends    []string
	startAt map[string]time.Time
	endAt   map[string]time.Time
	running int
	maxRun  int
}

func newFakeFleet() *fakeFleet {
	return &fakeFleet{done: map[string]bool{}, missing: map[string]bool{}, opensAt: map[string]time.Time{}, fail: map[string]error{},
		live: map[string]Live{}, block: map[string]chan struct{}{}, calls: map[string]int{}, startAt: map[string]time.Time{}, endAt: map[string]time.Time{}}
}

func (f *fakeFleet) observe(_ context.Context, t Target, now time.Time) (Live, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := f.live[t.Name]
	l.Environment, l.Application, l.Found, l.Done = t.Name, t.AppName(), !f.missing[t.Name], f.done[t.Name]
	l.Window = window.Status{Open: true}
	if at, ok := f.opensAt[t.Name]; ok && (at.IsZero() || now.Before(at)) {
		l.Window = window.Status{Open: false, Reason: "deny window active"}
		if !at.IsZero() {
			l.Window.NextOpen = &at
		}
	}
	return l, nil
}

func (f *fakeFleet) Name() string { return "fake" }

func (f *fakeFleet) Apply(ctx context.Context, t Target, b Bundle, out io.Writer) error {
	f.mu.Lock()
	f.calls[t.Name]++
	f.starts = append(f.starts, t.Name)
	f.startAt[t.Name] = time.Now()
	f.running++
	f.maxRun = max(f.maxRun, f.running)
	block := f.block[t.Name]
	f.mu.Unlock()
	fmt.Fprintf(out, "applying %s to %s\n", b.Digest, t.Name)
	var err error
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			err = ctx.Err()
		}
	} else {
		time.Sleep(20 * time.Millisecond)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.running--
	f.ends = append(f.ends, t.Name)
	f.endAt[t.Name] = time.Now()
	if err != nil {
		return err
	}
	if err := f.fail[t.Name]; err != nil {
		return err
	}
	if _, ok := f.live[t.Name]; !ok {
		f.done[t.Name] = true
	}
	return nil
}

func targetsNamed(ns ...string) []Target {
	var out []Target
	for _, n := range ns {
		out = append(out, Target{Name: n})
	}
	return out
}

var rolloutBundle = Bundle{Reference: "registry.example.com/shop/bundle", Digest: "sha256:" + strings.Repeat("1", 64)}

// checkFinal fails unless every target of waves is in the report exactly once, in a final state.
func checkFinal(t *testing.T, waves []Wave, rep *Report) {
	t.Helper()
	n := 0
	for _, w := range waves {
		n += len(w.Targets)
	}
	if len(rep.Targets) != n {
		t.Fatalf("report has %d targets, want %d", len(rep.Targets), n)
	}
	total := 0
	for _, tr := range rep.Targets {
		if !slices.Contains(FinalTargetStates(), tr.State) {
			t.Errorf("target %s ended %q, not a final state", tr.Name, tr.State)
		}
	}
	for _, c := range rep.Counts {
		total += c
	}
	if total != n {
		t.Errorf("report counts %v add up to %d, want %d", rep.Counts, total, n)
	}
}

func states(rep *Report) map[string]TargetState {
	out := map[string]TargetState{}
	for _, tr := range rep.Targets {
		out[tr.Name] = tr.State
	}
	return out
}

// TestRolloutWavesConcurrencyPause: waves run in order, at most MaxConcurrency targets at once,
// with the pause between waves; every target's output is kept.
func TestRolloutWavesConcurrencyPause(t *testing.T) {
	f := newFakeFleet()
	waves, err := PlanWaves(targetsNamed("a", "b", "c", "d", "e", "f", "g"), []WaveSpec{{Name: "canary", Count: 1}})
	if err != nil {
		t.Fatal(err)
	}
	var events []Event
	pause := 300 * time.Millisecond
	dir := t.TempDir()
	rep, err := Rollout(context.Background(), waves, rolloutBundle, f, RolloutOptions{MaxConcurrency: 2, Pause: pause, FailureBudget: 2,
		Observe: f.observe, OutputDir: dir, OnEvent: func(e Event) { events = append(events, e) }})
	if err != nil {
		t.Fatal(err)
	}
	checkFinal(t, waves, rep)
	if rep.Counts[TargetSucceeded] != 7 || rep.Halted {
		t.Fatalf("Rollout() counts = %v, halted %v; want 7 succeeded", rep.Counts, rep.Halted)
	}
	if f.starts[0] != "a" || f.ends[0] != "a" {
		t.Errorf("the canary a must run alone first: starts %v, ends %v", f.starts, f.ends)
	}
	if f.maxRun != 2 {
		t.Errorf("at most %d targets ran at once, want exactly MaxConcurrency 2", f.maxRun)
	}
	for _, n := range []string{"b", "c", "d", "e", "f", "g"} {
		if gap := f.startAt[n].Sub(f.endAt["a"]); gap < pause {
			t.Errorf("%s started %v after the canary ended, want at least the pause %v", n, gap, pause)
		}
	}
	paused := slices.ContainsFunc(events, func(e Event) bool { return strings.HasPrefix(e.Message, "pausing 300ms before wave rest") })
	if !paused {
		t.Errorf("no pause event in %v", events)
	}
	tr := rep.Target("c")
	if tr.Output != filepath.Join(dir, "c.log") || !strings.Contains(tr.OutputTail, "applying sha256:111") || tr.Started == nil || tr.Finished == nil {
		t.Errorf("target c report = %+v", tr)
	}
	if b, _ := os.ReadFile(tr.Output); !strings.Contains(string(b), "applying") {
		t.Errorf("output file %s = %q", tr.Output, b)
	}
}

// TestRolloutResume: a target whose Application is already synced to the digest and healthy is
// succeeded without running the executor.
func TestRolloutResume(t *testing.T) {
	f := newFakeFleet()
	f.done["a"], f.done["b"] = true, true
	waves, _ := PlanWaves(targetsNamed("a", "b", "c"), nil)
	rep, err := Rollout(context.Background(), waves, rolloutBundle, f, RolloutOptions{MaxConcurrency: 3, Observe: f.observe})
	if err != nil {
		t.Fatal(err)
	}
	checkFinal(t, waves, rep)
	if f.calls["a"] != 0 || f.calls["b"] != 0 || f.calls["c"] != 1 {
		t.Errorf("executor calls = %v, want only c", f.calls)
	}
	if !rep.Target("a").AlreadyDone || rep.Target("c").AlreadyDone || rep.Counts[TargetSucceeded] != 3 {
		t.Errorf("report = %+v %+v, counts %v", rep.Target("a"), rep.Target("c"), rep.Counts)
	}
}

// TestRolloutFailureBudget: a failure that takes a wave's failure rate past the budget halts the
// rollout: nothing new starts, running targets finish, the rest is halted, and the report names
// each failure with its class.
func TestRolloutFailureBudget(t *testing.T) {
	permanent := &argocd.SyncError{Class: argocd.ClassPermanent, Summary: "Sync failed: forbidden kind"}
	t.Run("crossed", func(t *testing.T) {
		f := newFakeFleet()
		f.fail["c"] = permanent
		// b runs while c fails; it must finish on its own.
		f.block["b"] = make(chan struct{})
		waves, _ := PlanWaves(targetsNamed("a", "b", "c", "d", "e", "f", "g"), []WaveSpec{{Name: "canary", Count: 1}})
		var halted time.Time
		rep, err := Rollout(context.Background(), waves, rolloutBundle, f, RolloutOptions{MaxConcurrency: 2, FailureBudget: 2, Observe: f.observe,
			OnEvent: func(e Event) {
				if strings.HasPrefix(e.Message, "halted:") {
					halted = time.Now()
					close(f.block["b"])
				}
			}})
		if err != nil {
			t.Fatal(err)
		}
		checkFinal(t, waves, rep)
		want := map[string]TargetState{"a": TargetSucceeded, "b": TargetSucceeded, "c": TargetFailed, "d": TargetHalted, "e": TargetHalted, "f": TargetHalted, "g": TargetHalted}
		if got := states(rep); !maps2Equal(got, want) {
			t.Errorf("states = %v, want %v", got, want)
		}
		if !rep.Halted || !strings.Contains(rep.HaltReason, "wave rest: 1 of 6 targets failed (16.7%), more than the failure budget of 2%") {
			t.Errorf("halted %v: %q", rep.Halted, rep.HaltReason)
		}
		fails := rep.Failures()
		if len(fails) != 1 || fails[0].Name != "c" || fails[0].Class != "permanent" || !strings.Contains(fails[0].Message, "forbidden kind") {
			t.Errorf("failures = %+v", fails)
		}
		if halted.IsZero() || f.calls["d"] != 0 {
			t.Errorf("halt event at %v; d ran %d times", halted, f.calls["d"])
		}
		if !strings.Contains(rep.Target("d").Message, "not started: wave rest") {
			t.Errorf("halted target message = %q", rep.Target("d").Message)
		}
	})
	t.Run("within budget", func(t *testing.T) {
		f := newFakeFleet()
		f.fail["c"] = permanent
		waves, _ := PlanWaves(targetsNamed("a", "b", "c", "d", "e"), nil)
		rep, _ := Rollout(context.Background(), waves, rolloutBundle, f, RolloutOptions{MaxConcurrency: 1, FailureBudget: 20, Observe: f.observe})
		checkFinal(t, waves, rep)
		if rep.Halted || rep.Counts[TargetSucceeded] != 4 || rep.Counts[TargetFailed] != 1 {
			t.Errorf("1 of 5 failed with a budget of 20%%: halted %v, counts %v", rep.Halted, rep.Counts)
		}
	})
}

func maps2Equal(a, b map[string]TargetState) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestRolloutFailureClass: the class comes from the executor's error (a SyncError, a ClassError),
// else from the Application's last failed operation, else permanent; an executor that returned
// nil for an Application that is not done still fails the target.
func TestRolloutFailureClass(t *testing.T) {
	f := newFakeFleet()
	f.fail["sync-error"] = fmt.Errorf("wrapped: %w", &argocd.SyncError{Class: argocd.ClassStuck, Summary: "Sync stuck"})
	f.fail["class-error"] = &ClassError{Class: "transient", Err: errors.New("terraform: connection reset")}
	f.fail["plain"] = errors.New("exit status 1")
	f.live["plain"] = Live{FailureClass: "timeout", FailureMessage: "operation timed out"}
	f.live["not-done"] = Live{SyncStatus: "OutOfSync", HealthStatus: "Degraded", State: StateUnhealthy}
	f.fail["unclassified"] = errors.New("exit status 2")
	waves, _ := PlanWaves(targetsNamed("sync-error", "class-error", "plain", "not-done", "unclassified"), nil)
	rep, _ := Rollout(context.Background(), waves, rolloutBundle, f, RolloutOptions{MaxConcurrency: 5, FailureBudget: 100, Observe: f.observe})
	checkFinal(t, waves, rep)
	want := map[string]string{"sync-error": "stuck", "class-error": "transient", "plain": "timeout", "not-done": "permanent", "unclassified": "permanent"}
	for n, c := range want {
		if tr := rep.Target(n); tr.State != TargetFailed || tr.Class != c {
			t.Errorf("target %s = %s (%s) %q, want failed (%s)", n, tr.State, tr.Class, tr.Message, c)
		}
	}
	if m := rep.Target("not-done").Message; !strings.Contains(m, "the executor succeeded but the Application is not done (sync OutOfSync at none, health Degraded)") {
		t.Errorf("not-done message = %q", m)
	}
}

// TestRolloutWindows: a target whose window is closed is deferred, not failed, does not hold up
// the next wave, and starts when its window opens (a timer at NextOpen); one whose window opens
// after the deadline, or never, ends deferred past the deadline.
func TestRolloutWindows(t *testing.T) {
	f := newFakeFleet()
	start := time.Now()
	opens := start.Add(1500 * time.Millisecond)
	f.opensAt["soon"] = opens
	f.opensAt["late"] = start.Add(2 * time.Hour)
	f.opensAt["never"] = time.Time{}
	waves := []Wave{{Name: "first", Targets: targetsNamed("soon", "late", "never")}, {Name: "second", Targets: targetsNamed("x")}}
	var deferredEvents []string
	rep, err := Rollout(context.Background(), waves, rolloutBundle, f, RolloutOptions{MaxConcurrency: 1, Observe: f.observe, Deadline: start.Add(time.Hour),
		OnEvent: func(e Event) {
			if e.State == TargetDeferred {
				deferredEvents = append(deferredEvents, e.Target)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	checkFinal(t, waves, rep)
	want := map[string]TargetState{"soon": TargetSucceeded, "late": TargetDeferred, "never": TargetDeferred, "x": TargetSucceeded}
	if got := states(rep); !maps2Equal(got, want) {
		t.Errorf("states = %v, want %v", got, want)
	}
	if !f.startAt["soon"].After(opens) || f.startAt["soon"].Sub(opens) > 60*time.Second {
		t.Errorf("soon started at %v, want within 60 s after its window opened at %v", f.startAt["soon"], opens)
	}
	if !f.startAt["x"].Before(f.startAt["soon"]) {
		t.Errorf("the next wave's x started at %v, after the deferred soon (%v): a deferred target must not block the next wave", f.startAt["x"], f.startAt["soon"])
	}
	for _, n := range []string{"late", "never"} {
		if tr := rep.Target(n); !strings.HasPrefix(tr.Message, ReasonPastDeadline) || f.calls[n] != 0 {
			t.Errorf("target %s: %q, %d executor calls; want %q and none", n, tr.Message, f.calls[n], ReasonPastDeadline)
		}
	}
	if tr := rep.Target("late"); tr.DeferredUntil == nil || !tr.DeferredUntil.Equal(f.opensAt["late"]) {
		t.Errorf("late deferredUntil = %v", tr.DeferredUntil)
	}
	if !slices.Contains(deferredEvents, "soon") {
		t.Errorf("no deferred event for soon: %v", deferredEvents)
	}
}

// TestRolloutSkipped: with RequireApplication (the sync executor), a target without an
// Application is skipped.
func TestRolloutSkipped(t *testing.T) {
	f := newFakeFleet()
	f.missing["gone"] = true
	waves, _ := PlanWaves(targetsNamed("gone", "here"), nil)
	rep, _ := Rollout(context.Background(), waves, rolloutBundle, f, RolloutOptions{MaxConcurrency: 2, RequireApplication: true, Observe: f.observe})
	checkFinal(t, waves, rep)
	if tr := rep.Target("gone"); tr.State != TargetSkipped || f.calls["gone"] != 0 || !strings.Contains(tr.Message, "does not exist") {
		t.Errorf("gone = %+v, %d calls", tr, f.calls["gone"])
	}
	if rep.Target("here").State != TargetSucceeded {
		t.Errorf("here = %+v", rep.Target("here"))
	}
}

// TestRolloutInterrupted: a canceled rollout ends with every target in a final state: the running
// one and those not started are halted, and the report says it was interrupted.
func TestRolloutInterrupted(t *testing.T) {
	f := newFakeFleet()
	f.block["b"] = make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	waves, _ := PlanWaves(targetsNamed("a", "b", "c"), nil)
	rep, _ := Rollout(ctx, waves, rolloutBundle, f, RolloutOptions{MaxConcurrency: 1, Observe: f.observe, OnEvent: func(e Event) {
		if e.Target == "b" && e.State == TargetRunning {
			cancel()
		}
	}})
	checkFinal(t, waves, rep)
	want := map[string]TargetState{"a": TargetSucceeded, "b": TargetHalted, "c": TargetHalted}
	if got := states(rep); !maps2Equal(got, want) || !rep.Interrupted || rep.Halted {
		t.Errorf("states = %v (interrupted %v, halted %v), want %v", got, rep.Interrupted, rep.Halted, want)
	}
	if f.calls["c"] != 0 {
		t.Errorf("c ran after the interruption")
	}
}

// TestRolloutStop: a reason on Stop (the lock was lost) halts the rollout as the failure budget
// does: the running target finishes, nothing new starts, the rest are halted with the reason.
func TestRolloutStop(t *testing.T) {
	f := newFakeFleet()
	f.block["a"] = make(chan struct{})
	stop := make(chan string, 1)
	waves, _ := PlanWaves(targetsNamed("a", "b", "c"), nil)
	rep, err := Rollout(context.Background(), waves, rolloutBundle, f, RolloutOptions{MaxConcurrency: 1, Observe: f.observe, Stop: stop,
		OnEvent: func(e Event) {
			if e.Target == "a" && e.State == TargetRunning {
				stop <- "the lock was lost"
			}
			if strings.HasPrefix(e.Message, "halted:") {
				close(f.block["a"])
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	checkFinal(t, waves, rep)
	want := map[string]TargetState{"a": TargetSucceeded, "b": TargetHalted, "c": TargetHalted}
	if got := states(rep); !maps2Equal(got, want) {
		t.Errorf("states = %v, want %v", got, want)
	}
	if !rep.Halted || rep.HaltReason != "the lock was lost" || rep.Interrupted || f.calls["b"] != 0 {
		t.Errorf("halted %v (%q), interrupted %v, b ran %d times", rep.Halted, rep.HaltReason, rep.Interrupted, f.calls["b"])
	}
}

// TestPlanWavesPercentRounding: a percentage of the targets is rounded up, and float error never
// adds a target (64.4% of 250 is 161, not 162).
func TestPlanWavesPercentRounding(t *testing.T) {
	names := make([]string, 250)
	for i := range names {
		names[i] = fmt.Sprintf("t%03d", i)
	}
	for _, tt := range []struct {
		percent float64
		want    int
	}{{64.4, 161}, {10, 25}, {0.1, 1}, {50.2, 126}} {
		waves, err := PlanWaves(targetsNamed(names...), []WaveSpec{{Name: "first", Percent: tt.percent}})
		if err != nil {
			t.Fatal(err)
		}
		if got := len(waves[0].Targets); got != tt.want {
			t.Errorf("%g%% of 250 = %d targets, want %d", tt.percent, got, tt.want)
		}
	}
}

// TestRolloutTargetTimeout: an executor run that passes the target timeout is stopped (its context
// ends) and its target fails with class timeout, counting against the budget; the next targets
// still run within the budget.
func TestRolloutTargetTimeout(t *testing.T) {
	f := newFakeFleet()
	f.block["a"] = make(chan struct{}) // never released: a hung apply
	waves, _ := PlanWaves(targetsNamed("a", "b"), nil)
	rep, err := Rollout(context.Background(), waves, rolloutBundle, f, RolloutOptions{MaxConcurrency: 1, FailureBudget: 50, TargetTimeout: 200 * time.Millisecond, Observe: f.observe})
	if err != nil {
		t.Fatal(err)
	}
	checkFinal(t, waves, rep)
	a := rep.Target("a")
	if a.State != TargetFailed || a.Class != string(argocd.ClassTimeout) || !strings.Contains(a.Message, "target timeout (200ms)") {
		t.Errorf("a = %s (%s) %s, want failed, timeout", a.State, a.Class, a.Message)
	}
	// The timeout's clock starts just before the executor notes its start: a little under 200ms.
	if d := f.endAt["a"].Sub(f.startAt["a"]); d < 150*time.Millisecond || d > 5*time.Second {
		t.Errorf("a's executor ran %v, want stopped at the 200ms timeout", d)
	}
	if rep.Target("b").State != TargetSucceeded || rep.Halted || rep.Interrupted {
		t.Errorf("b = %s, halted %v, interrupted %v: a timeout is a failure like any other", rep.Target("b").State, rep.Halted, rep.Interrupted)
	}
}

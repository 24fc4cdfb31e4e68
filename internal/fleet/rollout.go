package fleet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/ferry-dev/terraform-provider-ferry/internal/argocd"
	"github.com/ferry-dev/terraform-provider-ferry/internal/window"
)

// TargetState is where a target of a rollout is. Every target ends in exactly one of the final states
// (TargetSucceeded, TargetFailed, TargetDeferred, TargetSkipped, TargetHalted); TargetPending and
// TargetRunning are seen only in progress events, and TargetDeferred also while a target waits
// for its window.
type TargetState string

// Target states.
const (
	TargetPending   TargetState = "pending"   // not started yet
	TargetRunning   TargetState = "running"   // its executor runs
	TargetSucceeded TargetState = "succeeded" // its Application is synced to the digest and healthy
	TargetFailed    TargetState = "failed"    // applied, and its Application did not end done; see Class
	TargetDeferred  TargetState = "deferred"  // its deployment window stayed closed (past the deadline)
	TargetSkipped   TargetState = "skipped"   // nothing to apply: no Application to sync (sync executor)
	TargetHalted    TargetState = "halted"    // never started: the rollout halted, was interrupted or ran out of time
)

// FinalTargetStates lists the states a target ends in, in the report's order.
func FinalTargetStates() []TargetState {
	return []TargetState{TargetSucceeded, TargetFailed, TargetDeferred, TargetSkipped, TargetHalted}
}

// ReasonPastDeadline is the message of a target that ends deferred because its window does not
// open before the rollout's deadline.
const ReasonPastDeadline = "deferred past the rollout deadline"

// ObserveFunc reads one target's live Application and window at now. A target whose environment
// or Application does not exist has Found false (and an open window, unless the environment's
// windows say otherwise).
type ObserveFunc func(ctx context.Context, t Target, now time.Time) (Live, error)

// ObserveWith returns the ObserveFunc that reads a target on c with ObserveOne (its AppProject and
// its Application by name), judged against bundle b: an Application reading another repository
// is not at the bundle.
func ObserveWith(c *argocd.Client, b Bundle) ObserveFunc {
	return func(ctx context.Context, t Target, now time.Time) (Live, error) {
		return ObserveOne(ctx, c, t.Name, t.AppName(), "oci://"+b.Reference, b.Digest, now)
	}
}

// RolloutOptions tune a rollout. Zero values mean: MaxConcurrency 1 (<= 0), no pause, a failure
// budget of 0% (the first failure halts), no deadline; DefaultRolloutOptions holds ferry's
// defaults.
type RolloutOptions struct {
	// Fleet names the rollout in the report.
	Fleet string
	// MaxConcurrency is how many targets run at once (deferred targets included). <= 0 means 1.
	MaxConcurrency int
	// Pause is waited after each wave but the last, unless the rollout halted.
	Pause time.Duration
	// FailureBudget is the failure rate of a wave, in percent, above which the rollout halts:
	// failed targets of the wave / targets of the wave × 100 > FailureBudget. 0 halts at the first
	// failure.
	FailureBudget float64
	// Deadline is the last instant a target may be started; a target whose window opens later
	// ends deferred (ReasonPastDeadline), one not started by then halted. Zero: no deadline.
	Deadline time.Time
	// TargetTimeout bounds one target's executor run: past it the run's context is cancelled, as
	// on an interruption (terraform and command: SIGINT, then SIGKILL after the grace period; sync:
	// stops following, Argo CD's operation runs on; hcp-terraform: the run is cancelled), and the
	// target fails with class timeout. Zero: no bound.
	TargetTimeout time.Duration
	// RequireApplication makes a target whose Application does not exist skipped rather than
	// applied (the sync executor cannot create one).
	RequireApplication bool
	// Observe reads a target's live state. Required.
	Observe ObserveFunc
	// OutputDir, if set, receives each target's executor output as TARGET.log; the report names
	// the file. The last lines are kept in the report either way.
	OutputDir string
	// OnEvent, if set, receives progress events, one at a time.
	OnEvent func(Event)
	// Stop, if set, halts the rollout when it receives a reason (the rollout's lock was lost):
	// nothing new starts, running targets finish, as when the failure budget is crossed.
	Stop <-chan string
	// Now returns the current time. Default time.Now.
	Now func() time.Time
}

// DefaultRolloutOptions provides ferry's defaults (fleet.yaml's and the CLI's).
var DefaultRolloutOptions = RolloutOptions{MaxConcurrency: DefaultMaxConcurrency, FailureBudget: DefaultFailureBudget, TargetTimeout: DefaultTargetTimeout}

// Event is one step of a rollout, for a progress display.
type Event struct {
	Time time.Time `json:"time"`
	// Wave is the wave's name; Target the target's ("" for a wave or rollout event).
	Wave   string `json:"wave,omitempty"`
	Target string `json:"target,omitempty"`
	// State is the target's new state; "" for a wave event.
	State TargetState `json:"state,omitempty"`
	// Message says what happened: "wave canary: 1 target", "already done", the failure, the halt.
	Message string `json:"message"`
	// Counts are the targets per state after the event.
	Counts map[TargetState]int `json:"counts"`
}

// ErrNoObserve is returned by Rollout when RolloutOptions.Observe is nil.
var ErrNoObserve = errors.New("rollout: no Observe function")

// Rollout applies bundle b to the targets of waves with ex: waves in order; in a wave at most
// opts.MaxConcurrency targets at once; opts.Pause between waves. Before a target runs its live
// Application is read: already done (synced to b.Digest and healthy) it succeeds without running
// the executor, so a rollout run again after an interruption continues where it stopped; its
// window closed, it is deferred and started when the window opens (a timer at the window
// engine's next-open time), without holding up the next wave. After the executor the Application
// is read again: done, the target succeeded; otherwise it failed with the executor's failure
// class (or the Application's). When a wave's failure rate passes opts.FailureBudget nothing new
// is started; running targets finish. The returned report holds every target in one final state;
// the error is only for unusable input.
func Rollout(ctx context.Context, waves []Wave, b Bundle, ex Executor, opts RolloutOptions) (*Report, error) {
	if opts.Observe == nil {
		return nil, ErrNoObserve
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxConcurrency <= 0 {
		opts.MaxConcurrency = 1
	}
	if opts.OutputDir != "" {
		if err := os.MkdirAll(opts.OutputDir, 0o700); err != nil {
			return nil, fmt.Errorf("rollout output directory: %w", err)
		}
	}
	rep := &Report{Fleet: opts.Fleet, Bundle: b, Executor: ex.Name(), Started: opts.Now().UTC(), Counts: map[TargetState]int{},
		byName: map[string]*TargetReport{}}
	for wi, w := range waves {
		wr := WaveReport{Name: w.Name}
		for _, t := range w.Targets {
			if rep.byName[t.Name] != nil {
				return nil, fmt.Errorf("rollout: target %s is in more than one wave", t.Name)
			}
			tr := &TargetReport{Name: t.Name, Application: t.AppName(), Wave: w.Name, State: TargetPending, wave: wi}
			rep.Targets = append(rep.Targets, tr)
			rep.byName[t.Name] = tr
			wr.Targets = append(wr.Targets, t.Name)
		}
		rep.Waves = append(rep.Waves, wr)
	}
	rep.Counts[TargetPending] = len(rep.Targets)

	r := &run{ctx: ctx, b: b, ex: ex, opts: opts, rep: rep, waves: waves,
		sem: make(chan struct{}, opts.MaxConcurrency), halt: make(chan struct{})}
	done := make(chan struct{})
	if opts.Stop != nil {
		go func() {
			select {
			case why := <-opts.Stop:
				r.haltWith(why)
			case <-done:
			}
		}()
	}
	r.loop()
	r.deferred.Wait()
	close(done)

	r.mu.Lock()
	defer r.mu.Unlock()
	if ctx.Err() != nil {
		// Interrupted only if the interruption cut something short: a cancel after every target
		// ended changes nothing.
		for _, t := range rep.Targets {
			if !t.final || t.interrupted {
				rep.Interrupted = true
				break
			}
		}
	}
	why := "the rollout deadline passed"
	switch {
	case rep.Halted:
		why = rep.HaltReason
	case rep.Interrupted:
		why = "the rollout was interrupted"
	}
	for _, t := range rep.Targets {
		if t.final {
			continue
		}
		if t.State == TargetDeferred && !rep.Halted && !rep.Interrupted {
			// Its window opened only as the deadline passed.
			t.Message, t.final = ReasonPastDeadline, true
			continue
		}
		if t.State == TargetDeferred && t.DeferredUntil != nil {
			t.Message = "not started: deferred until its window opens at " + t.DeferredUntil.Format(time.RFC3339) + ", and the rollout stopped first: " + why
		} else {
			t.Message = "not started: " + why
		}
		t.State, t.final = TargetHalted, true
	}
	rep.Counts = map[TargetState]int{}
	for _, t := range rep.Targets {
		rep.Counts[t.State]++
	}
	rep.Finished = opts.Now().UTC()
	return rep, nil
}

type run struct {
	ctx   context.Context
	b     Bundle
	ex    Executor
	opts  RolloutOptions
	rep   *Report
	waves []Wave

	mu       sync.Mutex    // guards rep
	sem      chan struct{} // one token per running target
	halt     chan struct{} // closed when the failure budget is crossed
	haltOnce sync.Once
	deferred sync.WaitGroup // deferred targets waiting for their window
	emitMu   sync.Mutex     // OnEvent gets one event at a time
}

// stopped says whether nothing new may start: halted, interrupted or past the deadline.
func (r *run) stopped() bool {
	select {
	case <-r.halt:
		return true
	case <-r.ctx.Done():
		return true
	default:
	}
	return !r.opts.Deadline.IsZero() && r.opts.Now().After(r.opts.Deadline)
}

// acquire takes a concurrency token, or returns false when the rollout stopped first.
func (r *run) acquire() bool {
	if r.stopped() {
		return false
	}
	select {
	case r.sem <- struct{}{}:
		if r.stopped() {
			<-r.sem
			return false
		}
		return true
	case <-r.halt:
	case <-r.ctx.Done():
	}
	return false
}

func (r *run) loop() {
	for wi, w := range r.waves {
		if r.stopped() {
			return
		}
		r.event(Event{Wave: w.Name, Message: fmt.Sprintf("wave %s (%d of %d): %d targets", w.Name, wi+1, len(r.waves), len(w.Targets))})
		var wg sync.WaitGroup
		for _, t := range w.Targets {
			if !r.acquire() {
				break
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				r.target(t)
			}()
		}
		wg.Wait()
		if wi == len(r.waves)-1 || r.stopped() || r.opts.Pause <= 0 {
			continue
		}
		r.event(Event{Wave: w.Name, Message: fmt.Sprintf("pausing %s before wave %s", argocd.ShortDuration(r.opts.Pause), r.waves[wi+1].Name)})
		t := time.NewTimer(r.opts.Pause)
		select {
		case <-t.C:
		case <-r.halt:
		case <-r.ctx.Done():
		}
		t.Stop()
	}
}

// target runs one target holding a concurrency token, and releases it. A target whose window is
// closed releases its token and waits, off the wave, for its window.
func (r *run) target(t Target) {
	defer func() { <-r.sem }()
	ctx := r.ctx
	tr := r.rep.byName[t.Name]
	now := r.opts.Now()
	live, err := r.opts.Observe(ctx, t, now)
	if err != nil {
		if ctx.Err() != nil {
			return // interrupted: halted at the end
		}
		r.finish(tr, TargetFailed, string(argocd.APIErrorClass(err)), "could not read the Application before applying: "+err.Error(), false)
		return
	}
	switch {
	case live.WindowError != "":
		r.finish(tr, TargetFailed, string(argocd.ClassPermanent), "invalid deployment windows: "+live.WindowError, false)
		return
	case live.Done:
		r.finish(tr, TargetSucceeded, "", "already done: Application "+t.AppName()+" is synced to the digest and healthy", true)
		return
	case !live.Found && r.opts.RequireApplication:
		r.finish(tr, TargetSkipped, "", "Application "+t.AppName()+" does not exist; the sync executor syncs only existing Applications", false)
		return
	case !live.Window.Open:
		r.deferTarget(t, tr, live.Window)
		return
	}

	started := r.opts.Now().UTC()
	r.update(tr, func() { tr.State, tr.Started, tr.Message = TargetRunning, &started, "" }, "started")
	out, closeOut := r.output(tr)
	actx, cancel := ctx, context.CancelFunc(func() {})
	if r.opts.TargetTimeout > 0 {
		actx, cancel = context.WithTimeout(ctx, r.opts.TargetTimeout)
	}
	applyErr := r.ex.Apply(actx, t, r.b, out)
	// An executor that still succeeded as the timer fired is judged like any other.
	timedOut := applyErr != nil && errors.Is(actx.Err(), context.DeadlineExceeded) && ctx.Err() == nil
	cancel()
	closeOut()
	finished := r.opts.Now().UTC()
	r.update(tr, func() { tr.Finished = &finished }, "")
	if ctx.Err() != nil {
		// Interrupted mid-apply: not the target's failure (it does not count against the
		// budget); what the target reached is read by the next run.
		r.update(tr, func() {
			tr.State, tr.Message, tr.final, tr.interrupted = TargetHalted, "interrupted while its executor ran; a new rollout reads what it reached", true, true
		}, "")
		return
	}

	if timedOut {
		msg := fmt.Sprintf("stopped: the executor ran longer than the target timeout (%s)", argocd.ShortDuration(r.opts.TargetTimeout))
		if applyErr != nil {
			msg += ": " + applyErr.Error()
		}
		r.finish(tr, TargetFailed, string(argocd.ClassTimeout), msg, false)
		return
	}

	after, err := r.settled(ctx, t, applyErr)
	if ctx.Err() != nil {
		r.update(tr, func() {
			tr.State, tr.Message, tr.final, tr.interrupted = TargetHalted, "interrupted while ferry read what its executor reached; a new rollout reads it", true, true
		}, "")
		return
	}
	switch {
	case err == nil && after.Done:
		msg := "synced to the digest and healthy"
		if applyErr != nil {
			msg += " (the executor reported: " + applyErr.Error() + ")"
		}
		r.finish(tr, TargetSucceeded, "", msg, false)
		return
	case err == nil && !after.Window.Open && classOf(applyErr, Live{}) == string(argocd.ClassWindow):
		// The window closed between the check and the sync: defer, as if it had been closed.
		r.deferTarget(t, tr, after.Window)
		return
	}
	class, msg := classOf(applyErr, after), ""
	switch {
	case applyErr != nil:
		msg = applyErr.Error()
	case err != nil:
		class, msg = string(argocd.APIErrorClass(err)), "could not read the Application after applying: "+err.Error()
	case after.FailureMessage != "":
		msg = "the executor succeeded but the Application is not done: " + after.FailureMessage
	default:
		msg = fmt.Sprintf("the executor succeeded but the Application is not done (sync %s at %s, health %s)", orNone(after.SyncStatus), orNone(after.Revision), orNone(after.HealthStatus))
	}
	r.finish(tr, TargetFailed, class, msg, false)
}

// settleTimeout bounds how long an Application the executor left without an error may still
// be settling (Argo CD's status catching up with a sync that just ended) before it is judged.
const settleTimeout = 30 * time.Second

// settled reads t after its executor ran. When the executor reported success and the Application
// is still in progress towards the digest, it reads again, every 2 s for up to settleTimeout.
func (r *run) settled(ctx context.Context, t Target, applyErr error) (Live, error) {
	deadline := r.opts.Now().Add(settleTimeout)
	for {
		l, err := r.opts.Observe(ctx, t, r.opts.Now())
		if err != nil || l.Done || applyErr != nil || l.State != StateInProgress || r.opts.Now().After(deadline) {
			return l, err
		}
		select {
		case <-ctx.Done():
			return l, err
		case <-time.After(2 * time.Second):
		}
	}
}

// classOf is the failure class of an executor's error, else of the Application's last failed
// operation, else permanent.
func classOf(err error, live Live) string {
	var se *argocd.SyncError
	var ce *ClassError
	switch {
	case errors.As(err, &se):
		return string(se.Class)
	case errors.As(err, &ce) && ce.Class != "":
		return ce.Class
	case live.FailureClass != "":
		return live.FailureClass
	}
	return string(argocd.ClassPermanent)
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// deferTarget records a closed window: past the deadline (or never opening) the target ends
// deferred; otherwise a timer starts it again at the window's next opening.
func (r *run) deferTarget(t Target, tr *TargetReport, ws window.Status) {
	next := ws.NextOpen
	if next == nil || (!r.opts.Deadline.IsZero() && next.After(r.opts.Deadline)) {
		msg := ReasonPastDeadline + ": " + ws.Reason
		r.update(tr, func() { tr.DeferredUntil = next }, "")
		r.finish(tr, TargetDeferred, "", msg, false)
		return
	}
	until := next.UTC()
	r.update(tr, func() { tr.State, tr.DeferredUntil, tr.Message = TargetDeferred, &until, "window closed: "+ws.Reason }, "deferred until "+until.Format(time.RFC3339))
	r.deferred.Add(1)
	go func() {
		defer r.deferred.Done()
		// A timer set to the opening, not polling; a second later so the window engine and Argo
		// CD both see it open.
		timer := time.NewTimer(until.Sub(r.opts.Now()) + time.Second)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-r.halt:
			return
		case <-r.ctx.Done():
			return
		}
		if r.acquire() {
			r.target(t)
		}
	}()
}

// output returns where the executor writes: the target's log file (if OutputDir is set) and a
// buffer whose tail goes into the report.
func (r *run) output(tr *TargetReport) (io.Writer, func()) {
	buf := &outputTail{max: 4096}
	var w io.Writer = buf
	var f *os.File
	if r.opts.OutputDir != "" {
		path := filepath.Join(r.opts.OutputDir, tr.Name+".log")
		var err error
		if f, err = os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err == nil {
			w = io.MultiWriter(f, buf)
			tr.Output = path
		}
	}
	return &lockedWriter{w: w}, func() {
		if f != nil {
			f.Close()
		}
		r.update(tr, func() { tr.OutputTail = buf.tail() }, "")
	}
}

// finish gives tr its final state, and halts the rollout when its wave's failures pass the budget.
func (r *run) finish(tr *TargetReport, s TargetState, class, msg string, alreadyDone bool) {
	rep := r.rep
	r.mu.Lock()
	tr.State, tr.Class, tr.Message, tr.AlreadyDone, tr.final = s, class, msg, alreadyDone, true
	halt := ""
	if s == TargetFailed {
		w := &rep.Waves[tr.wave]
		w.Failed++
		rate := float64(w.Failed) * 100 / float64(len(w.Targets))
		if rate > r.opts.FailureBudget {
			halt = fmt.Sprintf("wave %s: %d of %d targets failed (%.1f%%), more than the failure budget of %g%%", w.Name, w.Failed, len(w.Targets), rate, r.opts.FailureBudget)
		}
	}
	ev := r.eventLocked(Event{Wave: tr.Wave, Target: tr.Name, State: s, Message: msg})
	r.mu.Unlock()
	r.emit(ev)
	if halt != "" {
		r.haltWith(halt)
	}
}

// haltWith halts the rollout for why, once: nothing new starts, running targets finish.
func (r *run) haltWith(why string) {
	r.mu.Lock()
	if r.rep.Halted {
		r.mu.Unlock()
		return
	}
	r.rep.Halted, r.rep.HaltReason = true, why
	r.mu.Unlock()
	r.haltOnce.Do(func() { close(r.halt) })
	r.event(Event{Message: "halted: " + why + "; starting nothing new, letting running targets finish"})
}

// update changes tr under the report's lock and, when msg is set, emits an event.
func (r *run) update(tr *TargetReport, fn func(), msg string) {
	r.mu.Lock()
	fn()
	var ev *Event
	if msg != "" {
		e := r.eventLocked(Event{Wave: tr.Wave, Target: tr.Name, State: tr.State, Message: msg})
		ev = &e
	}
	r.mu.Unlock()
	if ev != nil {
		r.emit(*ev)
	}
}

func (r *run) event(ev Event) {
	r.mu.Lock()
	ev = r.eventLocked(ev)
	r.mu.Unlock()
	r.emit(ev)
}

// eventLocked fills in the time and the counts; called with the report's lock held.
func (r *run) eventLocked(ev Event) Event {
	ev.Time = r.opts.Now().UTC()
	ev.Counts = map[TargetState]int{}
	for _, t := range r.rep.Targets {
		ev.Counts[t.State]++
	}
	return ev
}

// emit hands ev to OnEvent, one event at a time.
func (r *run) emit(ev Event) {
	if r.opts.OnEvent == nil {
		return
	}
	r.emitMu.Lock()
	defer r.emitMu.Unlock()
	r.opts.OnEvent(ev)
}

// outputTail keeps the last max bytes written, cut at a line start.
type outputTail struct {
	max int
	b   []byte
}

func (t *outputTail) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 2*t.max {
		t.b = append([]byte(nil), t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *outputTail) tail() string {
	b := t.b
	if len(b) > t.max {
		b = b[len(b)-t.max:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return string(b)
}

// lockedWriter serializes writes: executors may write from several goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// SortedTargetStates returns the states of counts in FinalStates order, then any others.
func SortedTargetStates(counts map[TargetState]int) []TargetState {
	var out []TargetState
	for _, s := range FinalTargetStates() {
		if counts[s] > 0 {
			out = append(out, s)
		}
	}
	var rest []TargetState
	for s, n := range counts {
		if n > 0 && !contains(out, s) {
			rest = append(rest, s)
		}
	}
	sort.Slice(rest, func(i, j int) bool { return rest[i] < rest[j] })
	return append(out, rest...)
}

func contains(s []TargetState, v TargetState) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

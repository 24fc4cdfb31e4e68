package argocd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/ferry-dev/terraform-provider-ferry/internal/kube"
)

// Following an operation through a watch until a failure class is certain (docs/sync.md).

// maxReadFailures is how many reads or watches of the Application in a row may fail, a second
// apart, before a wait gives up on them. A request the transport already retried (a
// *kube.UnreachableError) ends the wait at once.
const maxReadFailures = 5

// resyncEvery is how long a wait lets its watch stay silent before it reads the Application.
const resyncEvery = 30 * time.Second

// readError is an API error that ended watchApp.
type readError struct{ err error }

func (e *readError) Error() string { return e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

// watchApp calls fn with the Application whenever it changes and at least every second, until fn
// says done or ctx ends. Expired or broken watches are re-established from a fresh read; a cluster
// that stays unreachable, or reads that keep failing, end it with a *readError.
func (c *Client) watchApp(ctx context.Context, name string, fn func(app *unstructured.Unstructured) (bool, error)) error {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	failures := 0
	// failed says whether to go on after err, waiting a second first.
	failed := func(err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var ue *kube.UnreachableError
		if failures++; errors.As(err, &ue) || failures >= maxReadFailures {
			return &readError{err: err}
		}
		if sleepCtx(ctx, time.Second) != nil {
			return ctx.Err()
		}
		return nil
	}
	for {
		app, err := c.res(ApplicationGVR).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			if isNotFound(err) {
				return &SyncError{Class: ClassPermanent, Summary: "Application " + name + " was deleted while ferry was waiting"}
			}
			if err := failed(err); err != nil {
				return err
			}
			continue
		}
		failures = 0
		read := time.Now()
		if done, err := fn(app); done {
			return err
		}
		w, err := c.res(ApplicationGVR).Watch(ctx, metav1.ListOptions{
			FieldSelector:   fields.OneTermEqualSelector("metadata.name", name).String(),
			ResourceVersion: app.GetResourceVersion(),
		})
		if err != nil {
			if err := failed(err); err != nil {
				return err
			}
			continue
		}
	events:
		for {
			select {
			case <-ctx.Done():
				w.Stop()
				return ctx.Err()
			case <-tick.C:
				if time.Since(read) >= resyncEvery {
					// A connection that went silent (a network that drops packets rather than
					// refusing them) leaves the watch waiting for HTTP/2's health check; a read
					// under the transport's bounds finds out sooner.
					fresh, err := c.res(ApplicationGVR).Get(ctx, name, metav1.GetOptions{})
					if err != nil {
						w.Stop()
						if isNotFound(err) {
							return &SyncError{Class: ClassPermanent, Summary: "Application " + name + " was deleted while ferry was waiting"}
						}
						if err := failed(err); err != nil {
							return err
						}
						break events
					}
					app, read = fresh, time.Now()
				}
				if done, err := fn(app); done {
					w.Stop()
					return err
				}
			case ev, ok := <-w.ResultChan():
				if !ok || ev.Type == watch.Error {
					break events // expired or broken: re-read and re-watch
				}
				if ev.Type == watch.Deleted {
					w.Stop()
					return &SyncError{Class: ClassPermanent, Summary: "Application " + name + " was deleted while ferry was waiting"}
				}
				if u, ok := ev.Object.(*unstructured.Unstructured); ok {
					app, read = u, time.Now()
					if done, err := fn(app); done {
						w.Stop()
						return err
					}
				}
			}
		}
		w.Stop()
	}
}

func isNotFound(err error) bool { return apierrors.IsNotFound(err) }

// follower holds what follow has seen of one operation.
type follower struct {
	c            *Client
	a            App
	rid          string
	opts         SyncOptions
	written      time.Time
	msg          string
	msgSince     time.Time
	succeeded    time.Time
	degraded     time.Time
	outOfSync    outOfSyncWatch
	terminatedBy string // "stuck" or "timeout" once ferry terminated its own operation
	stuckMsg     string
	waiting      string // the last "waiting for …" message of the operation
	// syncTimeout is set once the operation's message said the controller's --sync-timeout is
	// terminating it: its "Operation terminated" then is that timeout's, not someone else's.
	syncTimeout bool
	last        *unstructured.Unstructured
	rollout     rolloutWatch
	unpicked    bool   // the controller did not pick up the request in time
	shown       string // the last state report shows
	// anyOp makes the follower wait for any operation to a.Digest, or for the application to be
	// at a.Digest without one (Wait, automated sync): it requested nothing, so it neither expects
	// a pick-up nor terminates or withdraws anything; rid is then the request id, if any, of the
	// operation it observes.
	anyOp bool
}

// follow watches the Application until the operation with request id rid has a certain outcome,
// or deadline.
func (c *Client) follow(ctx context.Context, a App, rid string, opts SyncOptions, deadline time.Time) (*Result, error) {
	return c.newFollower(a, rid, opts).run(ctx, deadline)
}

func (c *Client) newFollower(a App, rid string, opts SyncOptions) *follower {
	return &follower{c: c, a: a, rid: rid, opts: opts, written: opts.Now(), msgSince: opts.Now(), rollout: rolloutWatch{c: c}, outOfSync: outOfSyncWatch{refresh: c.refresh}}
}

// run is the observe loop of sync and wait alike: it watches the Application until observe
// reports a certain outcome or deadline (measured with opts.Now) passes.
func (f *follower) run(ctx context.Context, deadline time.Time) (*Result, error) {
	c, a, rid := f.c, f.a, f.rid
	ctx, cancel := context.WithTimeout(ctx, deadline.Sub(f.opts.Now()))
	defer cancel()
	var res *Result
	err := c.watchApp(ctx, a.Name, func(app *unstructured.Unstructured) (bool, error) {
		f.last = app
		if opState, _, _ := unstructured.NestedMap(app.Object, "status", "operationState"); opState != nil && !f.anyOp && infoValue(opState, InfoRequestID) == rid {
			switch phase := str(opState, "phase"); phase {
			case "Succeeded", "Failed", "Error":
				if f.opts.onEnded != nil {
					f.opts.onEnded()
					f.opts.onEnded = nil
				}
				if f.opts.untilEnded && phase == "Succeeded" {
					// Done once Argo CD compared the application after the operation and found
					// it Synced at the digest (health is not waited for); a stale OutOfSync is
					// left to observe's refresh, as with wait = true.
					finished, _ := time.Parse(time.RFC3339, str(opState, "finishedAt"))
					reconciled, err := time.Parse(time.RFC3339, str(app.Object, "status", "reconciledAt"))
					if s := StatusOf(app); err == nil && !reconciled.Before(finished) && s.SyncStatus == "Synced" && s.Revision == a.Digest {
						res = resultOf(app)
						return true, nil
					}
				}
			}
		}
		r, done, err := f.observe(ctx, app)
		res = r
		if !done {
			f.report(app)
		}
		return done, err
	})
	if err != nil && ctx.Err() != nil {
		// The overall timeout: take back our own operation (terminated if it runs, withdrawn if
		// it was never picked up) and report.
		return nil, f.timeout()
	}
	var re *readError
	if errors.As(err, &re) {
		return nil, f.lost(re.err)
	}
	var se *SyncError
	if f.unpicked && errors.As(err, &se) {
		se.Advice += " " + f.abandon()
	}
	return res, err
}

// report tells OnProgress what the follower waits for whenever that changes: the operation's
// phase and message, and the application's sync and health status and revision.
func (f *follower) report(app *unstructured.Unstructured) {
	if f.opts.OnProgress == nil {
		return
	}
	s := StatusOf(app)
	line := fmt.Sprintf("%s: %s, %s at %s", s.Name, firstNonEmpty(s.SyncStatus, "sync unknown"), firstNonEmpty(s.HealthStatus, "health unknown"), shortRevision(s.Revision))
	if op := s.LastOperation; op != nil && (op.Phase == "Running" || op.Phase == "Terminating") {
		line += "; operation " + op.Phase
		if op.Message != "" {
			line += ": " + op.Message
		}
	} else if requested, _, _ := unstructured.NestedMap(app.Object, "operation"); requested != nil {
		line += "; operation requested, not started yet"
	}
	if f.a.Digest != "" && s.Revision != f.a.Digest {
		line += "; waiting for " + shortRevision(f.a.Digest)
	}
	if line != f.shown {
		f.shown = line
		f.opts.progress("%s", line)
	}
}

// shortRevision abbreviates a digest for progress lines, as git does a commit.
func shortRevision(r string) string {
	if d, ok := strings.CutPrefix(r, "sha256:"); ok && len(d) > 12 {
		return "sha256:" + d[:12]
	}
	return firstNonEmpty(r, "no revision")
}

// lost is the outcome of a wait that could no longer read the Application: transient when the
// cluster was unreachable through every attempt (or its reads kept failing so), permanent when
// it refused them. Nothing can be taken back then; the operation, if any, goes on without ferry.
func (f *follower) lost(err error) error {
	class := apiErrorClass(err)
	what, cause := "Lost the cluster", err
	var ue *kube.UnreachableError
	if errors.As(err, &ue) {
		what, cause = fmt.Sprintf("Kubernetes API server %s unreachable after %d attempts", ue.Host, ue.Attempts), ue.Err
	} else if class == ClassPermanent {
		what = "Unable to read the application"
	}
	advice := "ferry stopped waiting; Argo CD goes on without it."
	if hint := kube.Hint(err); hint != "" {
		advice = strings.ToUpper(hint[:1]) + hint[1:] + ". " + advice
	}
	switch {
	case f.anyOp:
		advice += fmt.Sprintf(" Once the cluster answers, wait again with `ferry app wait %s`.", f.a.Name)
	case f.rid != "":
		advice += fmt.Sprintf(" ferry's operation (request %s) may still run: once the cluster answers, check it with `ferry app status %s` and wait for it with `ferry app wait %s`, or stop it with `ferry app terminate %s`.", f.rid, f.a.Name, f.a.Name, f.a.Name)
	}
	return &SyncError{
		Class:       class,
		Summary:     fmt.Sprintf("%s while waiting for application %s: %v", what, f.a.Name, cause),
		LastMessage: f.msg,
		Resources:   failingResources(f.last),
		RequestID:   f.rid,
		Advice:      advice,
		cause:       err,
		final:       true,
	}
}

func (f *follower) timeout() error {
	what := "Sync"
	if f.anyOp {
		what = "Wait"
	}
	return &SyncError{
		Class:       ClassTimeout,
		Summary:     fmt.Sprintf("%s timed out after %s", what, f.opts.Timeout),
		LastMessage: f.msg,
		Resources:   failingResources(f.last),
		RequestID:   f.rid,
		Advice:      "Raise timeouts or look at the resources above. " + f.abandon(),
	}
}

// abandon takes back the operation ferry requested when it gives up on it, so that a sync
// reported as failed neither runs later nor blocks the next request as a conflict: its own
// operation still running is terminated, its request the controller never picked up is withdrawn
// (Terminate restricted to ferry's request). It says what it did, for the error's advice.
func (f *follower) abandon() string {
	if f.anyOp {
		return fmt.Sprintf("ferry did not request this operation and left it as it is: stop it with `ferry app terminate %s` if needed.", f.a.Name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stopped, err := f.c.stop(ctx, f.a.Name, f.rid)
	switch {
	case err != nil:
		return fmt.Sprintf("ferry could not take back its operation (%v); Argo CD may still run it: stop it with `ferry app terminate %s`.", err, f.a.Name)
	case stopped == Withdrawn:
		f.opts.progress("withdrew the sync request %s, which Argo CD never picked up", f.rid)
		return "ferry withdrew its sync request, which Argo CD never picked up: it will not run later."
	case stopped == Terminating:
		return "ferry terminated its own operation."
	}
	return "ferry's operation has ended."
}

// withdrawHeld takes back ferry's operation that Argo CD holds behind a window and waits (up to
// 30 s) until the controller has ended it — a terminate is not held by windows — so that nothing
// stays queued. It says what it did, for the error's advice.
func (f *follower) withdrawHeld(ctx context.Context) string {
	advice := f.abandon()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	for {
		app, err := f.c.get(ctx, ApplicationGVR, f.a.Name)
		if err == nil {
			opState, _, _ := unstructured.NestedMap(app.Object, "status", "operationState")
			if running, _, _ := operationInProgress(app); !running || infoValue(opState, InfoRequestID) != f.rid {
				return advice + " Nothing is left queued."
			}
		}
		if sleepCtx(ctx, 250*time.Millisecond) != nil {
			return advice + fmt.Sprintf(" Argo CD has not ended it yet; check with `ferry app status %s`.", f.a.Name)
		}
	}
}

// observe classifies one observation of the Application (see docs/sync.md).
func (f *follower) observe(ctx context.Context, app *unstructured.Unstructured) (*Result, bool, error) {
	now := f.opts.Now()
	opState, _, _ := unstructured.NestedMap(app.Object, "status", "operationState")
	if f.anyOp {
		return f.observeAny(ctx, app, opState, now)
	}
	ours := opState != nil && infoValue(opState, InfoRequestID) == f.rid
	if !ours {
		if cond := invalidSpec(app); cond != "" {
			return nil, true, &SyncError{Class: ClassPermanent, Summary: "Sync failed: invalid application or project", LastMessage: cond, RequestID: f.rid,
				Advice: "Fix the environment (project, destinations, source repositories) or the application; Argo CD cannot sync it as it is."}
		}
		if now.Sub(f.written) > f.opts.PickupTimeout {
			f.unpicked = true
			return nil, true, &SyncError{Class: ClassStuck, Summary: fmt.Sprintf("Sync stuck: Argo CD did not pick up the operation within %s", f.opts.PickupTimeout), RequestID: f.rid,
				Advice: "Check that the application controller runs, watches namespace " + f.c.namespace + ", serves the app's shard, and that neither the Application nor the cluster Secret has the argocd.argoproj.io/skip-reconcile annotation."}
		}
		return nil, false, nil
	}
	return f.observeOp(ctx, app, opState, now)
}

// observeAny is observe for a follower waiting for any operation to the digest (anyOp): a
// running operation is followed whatever its revision (stuck, approval, window and crash loop
// apply as to ferry's own); a finished one only when it was to the digest; without one, an
// application at the digest is waited for until Healthy, within the health timeout.
func (f *follower) observeAny(ctx context.Context, app *unstructured.Unstructured, opState map[string]any, now time.Time) (*Result, bool, error) {
	s := StatusOf(app)
	if f.a.Project == "" {
		f.a.Project = s.Project
	}
	if cond := invalidSpec(app); cond != "" {
		return nil, true, &SyncError{Class: ClassPermanent, Summary: "Sync failed: invalid application or project", LastMessage: cond,
			Advice: "Fix the environment (project, destinations, source repositories) or the application; Argo CD cannot sync it as it is."}
	}
	phase := str(opState, "phase")
	requested, _, _ := unstructured.NestedMap(app.Object, "operation")
	digest := f.a.Digest
	forDigest := opState != nil && (digest == "" || str(opState, "operation", "sync", "revision") == digest || str(opState, "syncResult", "revision") == digest)
	f.rid = infoValue(opState, InfoRequestID)
	switch {
	case phase == "Running" || phase == "Terminating":
		return f.observeOp(ctx, app, opState, now)
	case requested != nil:
		return nil, false, nil // an operation is requested and not started yet
	case forDigest && (phase == "Failed" || phase == "Error" || phase == "Succeeded"):
		return f.observeOp(ctx, app, opState, now)
	case digest != "" && s.Revision != digest:
		return nil, false, nil
	}
	// At the digest with no operation to it in sight (its record replaced, or none): health only,
	// once Synced (OutOfSync at the digest is an automated sync not started yet, or nobody's).
	if s.SyncStatus != "Synced" {
		f.succeeded, f.degraded = time.Time{}, time.Time{}
		return nil, false, nil
	}
	if f.succeeded.IsZero() {
		f.succeeded = now
	}
	reconciled, _ := time.Parse(time.RFC3339, s.ReconciledAt)
	return f.settled(ctx, app, nil, "", reconciled, now)
}

// observeOp classifies one observation of the operation whose state is opState.
func (f *follower) observeOp(ctx context.Context, app *unstructured.Unstructured, opState map[string]any, now time.Time) (*Result, bool, error) {
	op := operationOf(opState)
	if op.Message != f.msg {
		f.msg, f.msgSince = op.Message, now
	}
	if strings.HasPrefix(op.Message, "waiting for ") {
		f.waiting = op.Message
	}
	if strings.HasPrefix(op.Message, syncTimeoutTerminating) {
		f.syncTimeout = true
	}
	switch op.Phase {
	case "Running", "Terminating":
		// The health timeout and the Degraded grace count from the end of the operation (a wait
		// may have seen the application at the digest before Argo CD's automated sync started).
		f.succeeded, f.degraded = time.Time{}, time.Time{}
		if strings.HasPrefix(op.Message, syncWindowBlocked) {
			if strings.HasPrefix(op.Message, invalidSyncWindows) {
				return nil, true, &SyncError{Class: ClassPermanent, Summary: "Sync blocked: the project's sync windows are invalid", LastMessage: op.Message, RequestID: f.rid}
			}
			if f.opts.WindowPolicy == WindowWait {
				return nil, false, nil
			}
			if f.anyOp {
				return nil, true, &SyncError{Class: ClassWindow, Summary: "deployment window closed for " + f.a.Project, LastMessage: op.Message, RequestID: f.rid,
					Advice: "Argo CD holds the operation behind its deployment window; ferry did not request it and leaves it queued: it runs when the window opens (`ferry window check --environment " + f.a.Project + "` says when). Wait again then, or stop it with `ferry app terminate " + f.a.Name + "`."}
			}
			// Argo CD's evaluation of the window differs from ferry's (clock skew, DST edges,
			// selectors): take back the held operation so it does not run when the window opens.
			return nil, true, &SyncError{Class: ClassWindow, Summary: "deployment window closed for " + f.a.Project + " while the sync was queued", LastMessage: op.Message, RequestID: f.rid,
				Advice: "Argo CD held the operation behind its deployment window. " + f.withdrawHeld(ctx)}
		}
		if err := approvalError(f.c.namespace, f.a.Name, op.Message, f.rid, now); err != nil {
			return nil, true, err
		}
		if op.FinishedAt != "" && op.RetryCount > 0 {
			f.opts.progress("Argo CD is retrying the sync (attempt %d): %s", op.RetryCount, op.Message)
			f.msgSince = now // a pending retry is progress
			return nil, false, nil
		}
		if strings.HasPrefix(op.Message, "waiting for healthy state of") && f.terminatedBy == "" {
			// A wave waits for a workload: fail as soon as its Pods cannot become ready by
			// themselves (a crash loop), terminating ferry's own operation.
			if err := f.rollout.failure(ctx, app, now, f.rid); err != nil {
				err.Advice += " " + f.abandon()
				return nil, true, err
			}
		}
		if f.anyOp && now.Sub(f.msgSince) > f.opts.StuckAfter {
			return nil, true, &SyncError{Class: ClassStuck, Summary: fmt.Sprintf("Sync stuck: no progress for %s: %s", f.opts.StuckAfter, op.Message), LastMessage: op.Message, RequestID: f.rid, Resources: failingResources(app),
				Advice: "Look at the resource it waits for (its pods, events, readiness). " + f.abandon()}
		}
		if f.terminatedBy == "" && now.Sub(f.msgSince) > f.opts.StuckAfter {
			f.terminatedBy, f.stuckMsg = "stuck", op.Message
			tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			_, err := f.c.stop(tctx, f.a.Name, f.rid)
			cancel()
			if err != nil {
				return nil, true, &SyncError{Class: ClassStuck, Summary: fmt.Sprintf("Sync stuck: no progress for %s: %s", f.opts.StuckAfter, op.Message), LastMessage: op.Message, RequestID: f.rid, Resources: failingResources(app),
					Advice: "ferry could not terminate the operation: " + err.Error()}
			}
			f.opts.progress("no progress for %s (%s); terminating ferry's operation", f.opts.StuckAfter, op.Message)
		}
		return nil, false, nil
	case "Failed", "Error":
		if f.terminatedBy == "stuck" {
			return nil, true, &SyncError{Class: ClassStuck, Summary: fmt.Sprintf("Sync stuck: no progress for %s: %s", f.opts.StuckAfter, f.stuckMsg), LastMessage: op.Message, RequestID: f.rid, Resources: failingResources(app),
				Advice: "ferry terminated its own operation. Look at the resource it waited for (its pods, events, readiness), fix it, and apply again."}
		}
		terminated := retriedSuffixRE.ReplaceAllString(op.Message, "") == operationTerminated
		if terminated && !f.syncTimeout {
			return nil, true, &SyncError{Class: ClassPermanent, Summary: "Sync failed: the operation was terminated by someone else", LastMessage: op.Message, RequestID: f.rid}
		}
		if terminated || controllerSyncTimeoutRE.MatchString(op.Message) {
			return nil, true, &SyncError{Class: ClassStuck, Summary: "Sync stuck: Argo CD's controller sync timeout ended the operation: " + firstNonEmpty(f.waiting, op.Message),
				LastMessage: op.Message, RequestID: f.rid, Resources: failingResources(app),
				Advice: "The application controller runs with --sync-timeout (controller.sync.timeout.seconds) and terminated the operation. Look at the resource it waited for, fix it, and apply again."}
		}
		fail := classifyFailure(opState)
		resources := failingResources(app)
		summary := "Sync failed: " + op.Message
		advice := "Fix the manifests or the environment named above and apply again."
		switch {
		case fail.class == ClassTransient:
			summary = "Sync failed transiently: " + op.Message
			advice = "The cluster or registry was unreachable; ferry retried. Check connectivity and apply again."
		case fail.manifests != "":
			// Before the resources: the live ones the previous revision left may be unhealthy, but
			// the new manifests never reached them.
			summary = "Sync failed: Argo CD could not generate the manifests: " + fail.manifests
			advice = "Argo CD's repo-server could not read or render the bundle's manifests (a manifest that is not a Kubernetes object, a missing path, a render error, an artifact it does not accept). Fix the bundle, push and apply again."
		case len(resources) > 0:
			summary = fmt.Sprintf("Sync failed: %s: %s", resources[0].String(), firstNonEmpty(resources[0].Message, op.Message))
		}
		return nil, true, &SyncError{Class: fail.class, Summary: summary, LastMessage: op.Message, Resources: resources, RequestID: f.rid, Advice: advice}
	case "Succeeded":
		if f.succeeded.IsZero() {
			f.succeeded = now
		}
		finished, _ := time.Parse(time.RFC3339, op.FinishedAt)
		reconciled, err := time.Parse(time.RFC3339, str(app.Object, "status", "reconciledAt"))
		if err != nil || reconciled.Before(finished) {
			return nil, false, nil
		}
		return f.settled(ctx, app, opState, op.Message, reconciled, now)
	}
	return nil, false, nil
}

// settled observes an application after its operation succeeded (opState, its record; nil when
// there is none to the digest): Synced at the digest and Healthy is success; a crash loop, a
// lasting Degraded or Missing, resources left for pruning or a confirmed OutOfSync fail; not
// Healthy within the health timeout is stuck.
func (f *follower) settled(ctx context.Context, app *unstructured.Unstructured, opState map[string]any, opMessage string, reconciled, now time.Time) (*Result, bool, error) {
	s := StatusOf(app)
	digest := f.a.Digest
	if digest == "" && f.anyOp {
		digest = s.Revision // Wait without a digest: whatever revision the application is at
	}
	if s.SyncStatus == "Synced" && s.Revision == digest && s.HealthStatus == "Healthy" {
		r := resultOf(app)
		return r, true, nil
	}
	if s.Revision != digest {
		return nil, false, nil // a stale status of the previous revision is never success
	}
	if s.HealthStatus == "Progressing" || s.HealthStatus == "Degraded" {
		if err := f.rollout.failure(ctx, app, now, f.rid); err != nil {
			return nil, true, err
		}
	}
	switch s.HealthStatus {
	case "Degraded", "Missing":
		if f.degraded.IsZero() {
			f.degraded = now
		}
		if now.Sub(f.degraded) >= f.opts.DegradedGrace {
			resources := failingResources(app)
			what := firstNonEmpty(s.HealthMessage, "the application is "+s.HealthStatus)
			if len(resources) > 0 {
				what = resources[0].String() + " is " + strings.ToLower(firstNonEmpty(resources[0].Status, s.HealthStatus))
			}
			return nil, true, &SyncError{Class: ClassPermanent, Summary: "Sync failed: " + what, LastMessage: firstNonEmpty(s.HealthMessage, opMessage), Resources: resources, RequestID: f.rid,
				Advice: "The bundle was applied but its rollout failed (crash loop, image pull, readiness, progress deadline). Inspect the resources above, fix the bundle, push and apply again."}
		}
		return nil, false, nil
	}
	f.degraded = time.Time{}
	if s.SyncStatus == "OutOfSync" && opState != nil {
		if n := pruneSkipped(opState); n > 0 {
			return nil, true, &SyncError{Class: ClassPermanent, Summary: fmt.Sprintf("Sync incomplete: %d resources require pruning", n), LastMessage: opMessage, RequestID: f.rid,
				Advice: "Enable prune in sync_options, or delete the resources no longer in the bundle."}
		}
		if err := f.outOfSync.failure(ctx, app, reconciled, now, f.rid); err != nil {
			return nil, true, err
		}
	}
	if now.Sub(f.succeeded) > f.opts.HealthTimeout {
		return nil, true, &SyncError{Class: ClassStuck, Summary: fmt.Sprintf("Sync stuck: not healthy %s after the sync (%s, %s)", f.opts.HealthTimeout, s.SyncStatus, s.HealthStatus), LastMessage: s.HealthMessage, Resources: failingResources(app), RequestID: f.rid,
			Advice: "The operation succeeded but the application never became Healthy. Inspect the resources above."}
	}
	return nil, false, nil
}

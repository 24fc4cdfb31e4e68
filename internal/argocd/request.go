package argocd

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
)

// Requesting an operation without overwriting one, and terminating or withdrawing it.

func newRequestID() string {
	b := make([]byte, 8)
	_, _ = crand.Read(b)
	return hex.EncodeToString(b)
}

// requestSync writes the operation as an optimistic-concurrency update: only when no operation is
// in progress, never as part of the applied object.
func (c *Client) requestSync(ctx context.Context, a App, rid string, opts SyncOptions, overrideReason string) error {
	conflict := newConflictWait(opts)
	pickupUntil := opts.Now().Add(opts.PickupTimeout)
	for attempt := 0; ; attempt++ {
		app, err := c.get(ctx, ApplicationGVR, a.Name)
		if err != nil {
			return &SyncError{Class: apiErrorClass(err), Summary: "Unable to read the Application", LastMessage: err.Error()}
		}
		if app.GetDeletionTimestamp() != nil {
			return &SyncError{Class: ClassPermanent, Summary: "Sync refused: the application is being deleted"}
		}
		if running, who, since := operationInProgress(app); running {
			if conflict.waited(ctx, who, since) {
				continue
			}
			return conflictError(who, since)
		}
		if cond := invalidSpec(app); cond != "" {
			return &SyncError{Class: ClassPermanent, Summary: "Sync failed: invalid application or project", LastMessage: cond,
				Advice: "Fix the environment (project destinations, source repositories) or the application; Argo CD cannot sync it as it is."}
		}
		if str(app.Object, "status", "reconciledAt") == "" {
			// The controller picks up an operation only after the app's first reconcile.
			left := pickupUntil.Sub(opts.Now())
			if left <= 0 {
				return &SyncError{Class: ClassStuck, Summary: "Sync stuck: Argo CD has not reconciled the application", Advice: "Check that the application controller is running, watches namespace " + c.namespace + " and that the app's shard is served."}
			}
			if err := c.waitFirstReconcile(ctx, a.Name, left); err != nil {
				return err
			}
			continue
		}
		op := map[string]any{
			"sync": map[string]any{
				"revision":     a.Digest,
				"prune":        a.Prune,
				"syncStrategy": map[string]any{"hook": map[string]any{}},
			},
			"initiatedBy": map[string]any{"username": InitiatedBy},
		}
		if len(a.SyncOptions) > 0 {
			so := []any{}
			for _, o := range a.SyncOptions {
				so = append(so, o)
			}
			op["sync"].(map[string]any)["syncOptions"] = so
		}
		if r := a.Retry.object(); r != nil {
			op["retry"] = r
		}
		info := []any{
			map[string]any{"name": InfoRequestID, "value": rid},
			map[string]any{"name": InfoBundleDigest, "value": a.Digest},
		}
		if opts.RunID != "" {
			info = append(info, map[string]any{"name": InfoRunID, "value": opts.RunID})
		}
		if overrideReason != "" {
			info = append(info, map[string]any{"name": InfoOverrideReason, "value": overrideReason})
			info = append(info, a.overrideInfo()...)
		}
		op["info"] = info
		app.Object["operation"] = op
		if status, ok := app.Object["status"].(map[string]any); ok {
			status["operationState"] = nil
		}
		_, err = c.res(ApplicationGVR).Update(ctx, app, metav1.UpdateOptions{FieldManager: FieldManager})
		if err == nil {
			return nil
		}
		if apierrors.IsConflict(err) && attempt < 50 {
			// Someone wrote in between: re-read, re-check, retry with jitter.
			if sleepCtx(ctx, time.Duration(10+rand.IntN(90))*time.Millisecond) != nil {
				return ctx.Err()
			}
			continue
		}
		return &SyncError{Class: apiErrorClass(err), Summary: "Unable to request the sync", LastMessage: err.Error()}
	}
}

// waitFirstReconcile waits up to d, on a watch of the Application, until Argo CD's controller has
// reconciled it once (status.reconciledAt is set), it is being deleted or Argo CD found its spec
// invalid; the caller reads it again either way. A watch, not polling: how long the controller takes to get to a new Application grows
// with the number it reconciles, and the requests of one sync must not (a read after 30 s of
// silence is all the wait adds, watchApp).
func (c *Client) waitFirstReconcile(ctx context.Context, name string, d time.Duration) error {
	wctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	err := c.watchApp(wctx, name, func(app *unstructured.Unstructured) (bool, error) {
		// An invalid spec is never reconciled (Argo CD sets no reconciledAt then): the caller's
		// read reports it at once.
		return str(app.Object, "status", "reconciledAt") != "" || app.GetDeletionTimestamp() != nil || invalidSpec(app) != "", nil
	})
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case wctx.Err() != nil:
		return nil // the pick-up limit passed: the caller's read says stuck
	case err != nil:
		var se *SyncError
		if errors.As(err, &se) { // deleted while ferry waited
			return se
		}
		return &SyncError{Class: apiErrorClass(err), Summary: "Unable to read the Application", LastMessage: err.Error()}
	}
	return nil
}

// conflictWait waits, up to SyncOptions.ConflictWait, for an operation someone else runs to end.
type conflictWait struct {
	opts  SyncOptions
	until time.Time
	told  bool
}

func newConflictWait(opts SyncOptions) *conflictWait {
	return &conflictWait{opts: opts, until: opts.Now().Add(opts.ConflictWait)}
}

// waited sleeps a second and reports true while the wait for the operation started by who at
// since may go on (saying so once); false when it is over or ctx is done: a conflict.
func (w *conflictWait) waited(ctx context.Context, who, since string) bool {
	if !w.opts.Now().Before(w.until) {
		return false
	}
	if !w.told {
		w.opts.progress("another operation (started by %s at %s) is running; waiting up to %s", who, since, ShortDuration(w.opts.ConflictWait))
		w.told = true
	}
	return sleepCtx(ctx, time.Second) == nil
}

func conflictError(who, since string) *SyncError {
	return &SyncError{
		Class:   ClassConflict,
		Summary: fmt.Sprintf("Sync conflict: an operation started by %s at %s is running", who, since),
		Advice:  "ferry never overwrites a running operation. Wait for it to finish (ferry app wait NAME), or terminate it (ferry app terminate NAME), then apply again.",
	}
}

// operationInProgress reports whether an operation is requested or running, by whom and since when.
func operationInProgress(app *unstructured.Unstructured) (bool, string, string) {
	opState, _, _ := unstructured.NestedMap(app.Object, "status", "operationState")
	who := str(opState, "operation", "initiatedBy", "username")
	if auto, _, _ := unstructured.NestedBool(opState, "operation", "initiatedBy", "automated"); auto {
		who = "automated sync"
	}
	since := str(opState, "startedAt")
	if op, ok, _ := unstructured.NestedMap(app.Object, "operation"); ok && op != nil {
		if who == "" || str(opState, "phase") != "Running" {
			who = str(op, "initiatedBy", "username")
			if auto, _, _ := unstructured.NestedBool(op, "initiatedBy", "automated"); auto {
				who = "automated sync"
			}
			since = "(not started yet)"
		}
		if who == "" {
			who = "unknown"
		}
		return true, who, since
	}
	phase := str(opState, "phase")
	if phase == "Running" || phase == "Terminating" {
		if who == "" {
			who = "unknown"
		}
		return true, who, since
	}
	return false, "", ""
}

func resultOf(app *unstructured.Unstructured) *Result {
	s := StatusOf(app)
	r := &Result{Name: s.Name, SyncStatus: s.SyncStatus, HealthStatus: s.HealthStatus, Revision: s.Revision}
	if s.LastOperation != nil {
		r.LastOperation = *s.LastOperation
	}
	return r
}

// Stopped says what Terminate did.
type Stopped int

const (
	// Terminating: a running operation was asked to terminate (or already was terminating).
	Terminating Stopped = iota + 1
	// Withdrawn: an operation requested but not yet started by the controller was removed.
	Withdrawn
)

// Terminate stops the operation of an Application, with a resourceVersion precondition: a running
// one is asked to terminate, as the API server does; one requested but not yet picked up by the
// controller is withdrawn (`operation` removed), so it never runs — the API server would mark the
// operation state Terminating, which for a request not started means rewriting the previous
// operation's record, if any, as terminated. It fails when there is neither.
func (c *Client) Terminate(ctx context.Context, name string) (Stopped, error) {
	stopped, err := c.stop(ctx, name, "")
	if err == nil && stopped == 0 {
		err = fmt.Errorf("application %s: no operation is running or requested", name)
	}
	return stopped, err
}

// stop is Terminate, restricted to ferry's request rid when rid is set; 0 means there was nothing
// to stop.
func (c *Client) stop(ctx context.Context, name, rid string) (Stopped, error) {
	for attempt := 0; attempt < 10; attempt++ {
		app, err := c.get(ctx, ApplicationGVR, name)
		if err != nil {
			return 0, err
		}
		opState, _, _ := unstructured.NestedMap(app.Object, "status", "operationState")
		op, _, _ := unstructured.NestedMap(app.Object, "operation")
		phase := str(opState, "phase")
		started := phase == "Running" || phase == "Terminating" // as operationInProgress
		var patch string
		var stopped Stopped
		switch {
		case started && (rid == "" || infoValue(opState, InfoRequestID) == rid):
			if phase == "Terminating" {
				return Terminating, nil
			}
			patch, stopped = `{"metadata":{"resourceVersion":%q},"status":{"operationState":{"phase":"Terminating"}}}`, Terminating
		case op != nil && !started && (rid == "" || infoValue(map[string]any{"operation": op}, InfoRequestID) == rid):
			patch, stopped = `{"metadata":{"resourceVersion":%q},"operation":null}`, Withdrawn
		default:
			return 0, nil
		}
		_, err = c.res(ApplicationGVR).Patch(ctx, name, types.MergePatchType, []byte(fmt.Sprintf(patch, app.GetResourceVersion())), metav1.PatchOptions{FieldManager: FieldManager})
		if err == nil {
			return stopped, nil
		}
		if !apierrors.IsConflict(err) {
			return 0, fmt.Errorf("terminate %s: %w", name, err)
		}
	}
	return 0, fmt.Errorf("terminate %s: too many conflicting writes", name)
}

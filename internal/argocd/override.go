package argocd

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
)

// overrideSuffix ends the name of every override project (OverrideProjectName).
const overrideSuffix = ".ferry-override"

// OverrideProjectName returns the name of a project's override project. The dot keeps it apart
// from every environment name (DNS labels have no dots).
func OverrideProjectName(project string) string { return project + overrideSuffix }

// syncOverride syncs through the override project: a copy of the application's project without
// its deployment windows that exists only while an override runs. The application stays in it
// exactly as long as ferry's operation runs — moving it back earlier would stop the operation:
// Argo CD's controller checks the project's windows at every step of a running operation and
// holds it ("Sync operation blocked by sync window") until the window opens
// (TestOverrideMoveBackWhileRunning) — and is moved back the moment the operation ends, also with
// wait = false (ferry then follows the operation to its end, not to health). The reason, the
// caller and the window are recorded in the operation info, on the Application
// (AnnotationLastOverride, kept by later applies) and as an Event (audit.go).
func (c *Client) syncOverride(ctx context.Context, a App, wait bool, opts SyncOptions, deadline time.Time) (*Result, error) {
	return retryTransient(ctx, opts, func() (*Result, error) { return c.overrideOnce(ctx, a, wait, opts, deadline) })
}

// overrideOnce moves the application into the override project, requests and follows one
// operation, and moves the application back as soon as that operation ended, whatever happened.
func (c *Client) overrideOnce(ctx context.Context, a App, wait bool, opts SyncOptions, deadline time.Time) (*Result, error) {
	moved, err := c.enterOverride(ctx, a, opts)
	if err != nil {
		if moved.Name != "" { // moved, but the override project could not be written again
			_ = c.overrideEnded(a, opts.OverrideReason)
		}
		return nil, err
	}
	var movedBack bool
	var backErr error
	moveBack := func() {
		if !movedBack {
			movedBack = true
			backErr = c.overrideEnded(a, opts.OverrideReason)
		}
	}
	opts.progress("deployment window closed; overriding it: %s", opts.OverrideReason)
	rid := newRequestID()
	if err := c.requestSync(ctx, moved, rid, opts, opts.OverrideReason); err != nil {
		moveBack()
		return nil, err
	}
	opts.progress("sync requested: application %s to %s (request %s)", a.Name, a.Digest, rid)
	if err := c.recordOverride(ctx, moved, *moved.audit, rid, opts.Now()); err != nil {
		opts.progress("warning: %v (the operation's info records the override)", err)
	}
	fopts := opts
	fopts.untilEnded = !wait
	fopts.onEnded = func() {
		opts.progress("ferry's operation %s ended; moving application %s back to project %s", rid, a.Name, a.Project)
		moveBack()
	}
	res, syncErr := c.follow(ctx, moved, rid, fopts, deadline)
	if !movedBack {
		// The follower gave up while ferry's operation had not ended (it terminated or withdrew
		// it, or it waits for an approval): end it, so nothing of the override stays half-run
		// or queued, then move back.
		c.endOwn(a.Name, rid)
		moveBack()
	}
	if backErr != nil {
		msg := fmt.Sprintf("ferry could not move application %s back to project %s (%v); the next sync, plan or `ferry app status %s` repairs it.", a.Name, a.Project, backErr, a.Name)
		var se *SyncError
		if syncErr != nil && errors.As(syncErr, &se) {
			se.Advice = strings.TrimSpace(se.Advice + " " + msg)
			return res, syncErr
		}
		if syncErr == nil {
			return res, &SyncError{Class: ClassTransient, Summary: "Unable to move the application back to project " + a.Project, LastMessage: backErr.Error(), RequestID: rid, Advice: msg}
		}
	}
	return res, syncErr
}

// enterOverride writes the override project and moves the application into it, annotated with
// the reason; it returns the moved App. Nothing moves while an operation is requested or running.
func (c *Client) enterOverride(ctx context.Context, a App, opts SyncOptions) (App, error) {
	// Conflict check before anything moves: the move releases an operation Argo CD holds behind
	// the window (someone else's, or an earlier request), which would then run under this
	// override. requestSync's check comes too late for that.
	rv, err := c.noOperation(ctx, a.Name, opts)
	if err != nil {
		return App{}, err
	}
	project, err := c.get(ctx, AppProjectGVR, a.Project)
	if err != nil {
		return App{}, &SyncError{Class: ClassPermanent, Summary: "Unable to read project " + a.Project, LastMessage: err.Error()}
	}
	ov := newObject("argoproj.io/v1alpha1", "AppProject", OverrideProjectName(a.Project), map[string]string{LabelEnvironment: a.Project})
	spec, _, _ := unstructured.NestedMap(project.Object, "spec")
	delete(spec, "syncWindows")
	spec["description"] = "ferry override of " + a.Project + ": no deployment windows; exists only while an override runs"
	ov.Object["spec"] = spec
	writeProject := func() error {
		if _, err := c.apply(ctx, AppProjectGVR, ov.DeepCopy()); err != nil {
			return &SyncError{Class: ClassPermanent, Summary: "Unable to write the override project", LastMessage: err.Error()}
		}
		return nil
	}
	if err := writeProject(); err != nil {
		return App{}, err
	}
	moved := a
	moved.Project = OverrideProjectName(a.Project)
	moved.OverrideReason = opts.OverrideReason
	// The audit record: who overrides which window, evaluated in the application's own project.
	moved.audit = c.newOverrideRecord(ctx, a, opts)
	// The move is applied at the resourceVersion the check read, so an operation written in
	// between fails it (409) and is checked again.
	for attempt := 0; ; attempt++ {
		obj := moved.object()
		obj.SetResourceVersion(rv)
		_, err := c.apply(ctx, ApplicationGVR, obj)
		if err == nil {
			break
		}
		if !apierrors.IsConflict(err) || attempt >= 50 {
			return App{}, &SyncError{Class: ClassPermanent, Summary: "Unable to move the application to the override project", LastMessage: err.Error()}
		}
		if sleepCtx(ctx, time.Duration(10+rand.IntN(90))*time.Millisecond) != nil {
			return App{}, ctx.Err()
		}
		if rv, err = c.noOperation(ctx, a.Name, opts); err != nil {
			return App{}, err
		}
	}
	// Written again now that the application is in it: another override of this environment
	// that ended in between may have deleted it as unused.
	if err := writeProject(); err != nil {
		return moved, err
	}
	return moved, nil
}

// overrideEnded moves the application back into its own project, then deletes the override
// project if no other application is in it.
func (c *Client) overrideEnded(a App, reason string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	back := a
	back.OverrideReason = reason
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if _, err = c.ApplyApplication(ctx, back); err == nil {
			break
		}
		if sleepCtx(ctx, time.Duration(attempt+1)*time.Second) != nil {
			break
		}
	}
	if err != nil {
		return err
	}
	_, err = c.deleteOverrideProject(ctx, a.Project)
	return err
}

// ownInProgress reports whether ferry's operation rid is requested or running on app.
func ownInProgress(app *unstructured.Unstructured, rid string) bool {
	running, _, _ := operationInProgress(app)
	if !running {
		return false
	}
	opState, _, _ := unstructured.NestedMap(app.Object, "status", "operationState")
	op, _, _ := unstructured.NestedMap(app.Object, "operation")
	return infoValue(opState, InfoRequestID) == rid || (op != nil && infoValue(map[string]any{"operation": op}, InfoRequestID) == rid)
}

// endOwn ends ferry's operation rid (terminated if it runs, withdrawn if never picked up) and
// waits, up to a minute, until the controller has ended it.
func (c *Client) endOwn(name, rid string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		app, err := c.get(ctx, ApplicationGVR, name)
		if err == nil && !ownInProgress(app, rid) {
			return
		}
		if err == nil {
			_, _ = c.stop(ctx, name, rid)
		}
		if sleepCtx(ctx, 250*time.Millisecond) != nil {
			return
		}
	}
}

// deleteOverrideProject deletes the override project of project unless an application is in it.
// It reports whether it deleted one.
func (c *Client) deleteOverrideProject(ctx context.Context, project string) (bool, error) {
	name := OverrideProjectName(project)
	if _, err := c.get(ctx, AppProjectGVR, name); errors.Is(err, ErrNotFound) {
		return false, nil
	}
	apps, err := c.ApplicationsUsing(ctx, name)
	if err != nil || len(apps) > 0 {
		return false, err
	}
	return true, c.del(ctx, AppProjectGVR, name, metav1.DeleteOptions{})
}

// overrideRunning reports whether a ferry override operation (one whose info has an
// override-reason) is requested or running on app.
func overrideRunning(app *unstructured.Unstructured) bool {
	if running, _, _ := operationInProgress(app); !running {
		return false
	}
	if op, _, _ := unstructured.NestedMap(app.Object, "operation"); op != nil && infoValue(map[string]any{"operation": op}, InfoOverrideReason) != "" {
		return true
	}
	opState, _, _ := unstructured.NestedMap(app.Object, "status", "operationState")
	phase := str(opState, "phase")
	return (phase == "Running" || phase == "Terminating") && infoValue(opState, InfoOverrideReason) != ""
}

// InOverrideProject reports whether app is in an override project, so that a caller that has read it
// calls [Client.RepairOverride] only then.
func InOverrideProject(app *unstructured.Unstructured) bool {
	return strings.HasSuffix(str(app.Object, "spec", "project"), overrideSuffix)
}

// RepairOverride moves an Application that an interrupted override left in its environment's
// override project (a killed process, a lost connection, a failed move back) back into its own
// project, unless a ferry override operation is still requested or running on it, and deletes
// the override project when no other application is in it. It returns what it repaired, "" when
// there was nothing to repair.
func (c *Client) RepairOverride(ctx context.Context, name string) (string, error) {
	for attempt := 0; attempt < 20; attempt++ {
		app, err := c.get(ctx, ApplicationGVR, name)
		if errors.Is(err, ErrNotFound) {
			return "", nil
		}
		if err != nil {
			return "", err
		}
		project := str(app.Object, "spec", "project")
		own, _ := strings.CutSuffix(project, overrideSuffix)
		if !InOverrideProject(app) || overrideRunning(app) {
			return "", nil
		}
		patch := fmt.Sprintf(`{"metadata":{"resourceVersion":%q},"spec":{"project":%q}}`, app.GetResourceVersion(), own)
		_, err = c.res(ApplicationGVR).Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{FieldManager: FieldManager})
		if apierrors.IsConflict(err) {
			if sleepCtx(ctx, time.Duration(10+rand.IntN(90))*time.Millisecond) != nil {
				return "", ctx.Err()
			}
			continue
		}
		if err != nil {
			return "", fmt.Errorf("move application %s back to project %s: %w", name, own, err)
		}
		msg := fmt.Sprintf("application %s was left in the override project %s, which has no deployment windows, by an interrupted override; ferry moved it back to project %s", name, project, own)
		if running, who, since := operationInProgress(app); running {
			msg += fmt.Sprintf(" (the operation started by %s at %s is subject to its windows again)", who, since)
		}
		if deleted, err := c.deleteOverrideProject(ctx, own); err != nil {
			msg += fmt.Sprintf("; deleting the override project failed: %v", err)
		} else if deleted {
			msg += " and deleted the override project"
		}
		return msg, nil
	}
	return "", fmt.Errorf("move application %s back from its override project: too many conflicting writes", name)
}

// noOperation returns the resourceVersion of the Application ("" when it does not exist yet) once
// no operation is requested or running on it — waiting up to ConflictWait — and otherwise fails
// as a conflict naming it, having written nothing.
func (c *Client) noOperation(ctx context.Context, name string, opts SyncOptions) (string, error) {
	conflict := newConflictWait(opts)
	for {
		app, err := c.get(ctx, ApplicationGVR, name)
		if errors.Is(err, ErrNotFound) {
			return "", nil
		}
		if err != nil {
			return "", &SyncError{Class: apiErrorClass(err), Summary: "Unable to read the Application", LastMessage: err.Error()}
		}
		running, who, since := operationInProgress(app)
		if !running {
			return app.GetResourceVersion(), nil
		}
		if conflict.waited(ctx, who, since) {
			continue
		}
		e := conflictError(who, since)
		if msg := str(app.Object, "status", "operationState", "message"); strings.HasPrefix(msg, syncWindowBlocked) {
			e.Summary = fmt.Sprintf("Sync conflict: an operation started by %s at %s is held by the deployment window", who, since)
			e.LastMessage = msg
		}
		e.Advice = "An override moves the application out of its windows, which would release this operation too; nothing was moved. " + e.Advice
		return "", e
	}
}

// RepairOverrides is RepairOverride for every Application in the environment's override project;
// it also deletes an override project nothing is in. It returns what it repaired.
func (c *Client) RepairOverrides(ctx context.Context, environment string) ([]string, error) {
	// The override project exists only while an override runs or after an interrupted one: one GET
	// on every refresh, and the list of Applications only then.
	if _, err := c.get(ctx, AppProjectGVR, OverrideProjectName(environment)); errors.Is(err, ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	apps, err := c.ApplicationsUsing(ctx, OverrideProjectName(environment))
	if err != nil {
		return nil, err
	}
	var repaired []string
	for _, name := range apps {
		msg, err := c.RepairOverride(ctx, name)
		if err != nil {
			return repaired, err
		}
		if msg != "" {
			repaired = append(repaired, msg)
		}
	}
	if len(apps) == 0 {
		if deleted, err := c.deleteOverrideProject(ctx, environment); err != nil {
			return repaired, err
		} else if deleted {
			repaired = append(repaired, "the override project "+OverrideProjectName(environment)+", left by an interrupted override, had no application in it; ferry deleted it")
		}
	}
	return repaired, nil
}

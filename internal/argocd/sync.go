package argocd

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/ferry-dev/terraform-provider-ferry/internal/window"
)

// Info keys ferry writes into operation.info.
const (
	InfoRequestID      = "ferry-request"
	InfoBundleDigest   = "bundle-digest"
	InfoRunID          = "tfc-run-id"
	InfoOverrideReason = "override-reason"
)

// InitiatedBy is the user ferry's operations are initiated by (a manual sync for Argo CD).
const InitiatedBy = "ferry"

// WindowPolicy says what a sync does when a deployment window is closed.
type WindowPolicy string

// Window policies.
const (
	WindowFail     WindowPolicy = "fail"
	WindowWait     WindowPolicy = "wait"
	WindowOverride WindowPolicy = "override"
)

// WindowPolicies lists the policies.
func WindowPolicies() []string {
	return []string{string(WindowFail), string(WindowWait), string(WindowOverride)}
}

// SyncOptions tune a sync. Zero values mean the defaults.
type SyncOptions struct {
	// Timeout bounds the whole sync. Default 20m.
	Timeout time.Duration
	// HealthTimeout bounds the wait for Healthy after the operation succeeded. Default 11m (past
	// Kubernetes' 10-minute progress deadline).
	HealthTimeout time.Duration
	// StuckAfter is how long a running operation may show the same message before ferry
	// terminates it and reports it stuck. Default 5m.
	StuckAfter time.Duration
	// PickupTimeout bounds the wait for the controller to pick up a written operation. Default 60s.
	PickupTimeout time.Duration
	// DegradedGrace is how long the application may stay Degraded after the operation before the
	// sync fails. Default 30s.
	DegradedGrace time.Duration
	// ConflictWait is how long to wait for another operation to finish before failing with
	// ClassConflict. Default 0: fail at once.
	ConflictWait time.Duration
	// TransientRetries bounds ferry's own retries of transient failures. Default 3; <0 disables.
	TransientRetries int
	// RetryBackoff is the first wait between transient retries, doubled each time. Default 5s.
	RetryBackoff time.Duration
	// WindowPolicy decides what a closed window does. Default WindowFail.
	WindowPolicy WindowPolicy
	// OverrideReason is required with WindowOverride and recorded on the Application and in the
	// operation info.
	OverrideReason string
	// RunID (HCP Terraform's TFC_RUN_ID) is recorded in the operation info when set.
	RunID string
	// OnProgress, if set, receives human progress lines.
	OnProgress func(string)
	// Now returns the current time. Default time.Now.
	Now func() time.Time

	// onEnded, when set, is called once, as soon as the follower sees ferry's operation ended
	// (Succeeded, Failed or Error): an override moves the application back then.
	onEnded func()
	// untilEnded makes the follower stop once ferry's operation Succeeded and the application
	// is Synced at the digest, without waiting for health (an override with wait = false).
	untilEnded bool
}

func (o *SyncOptions) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.Timeout, 20*time.Minute)
	def(&o.HealthTimeout, 11*time.Minute)
	def(&o.StuckAfter, 5*time.Minute)
	def(&o.PickupTimeout, time.Minute)
	def(&o.DegradedGrace, 30*time.Second)
	def(&o.RetryBackoff, 5*time.Second)
	if o.TransientRetries == 0 {
		o.TransientRetries = 3
	}
	if o.WindowPolicy == "" {
		o.WindowPolicy = WindowFail
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

func (o *SyncOptions) progress(format string, args ...any) {
	if o.OnProgress != nil {
		o.OnProgress(fmt.Sprintf(format, args...))
	}
}

// Result is the outcome of a successful sync or wait.
type Result struct {
	Name          string    `json:"name"`
	SyncStatus    string    `json:"syncStatus"`
	HealthStatus  string    `json:"healthStatus"`
	Revision      string    `json:"revision"`
	LastOperation Operation `json:"lastOperation"`
}

// Operation summarizes status.operationState.
type Operation struct {
	Phase       string `json:"phase"`
	Message     string `json:"message"`
	StartedAt   string `json:"startedAt"`
	FinishedAt  string `json:"finishedAt"`
	RetryCount  int64  `json:"retryCount"`
	RequestID   string `json:"requestId"`
	InitiatedBy string `json:"initiatedBy"`
}

// Status is the observed state of an Application.
type Status struct {
	Name             string     `json:"name"`
	Project          string     `json:"project"`
	RepoURL          string     `json:"repoURL"`
	TargetRevision   string     `json:"targetRevision"`
	SyncStatus       string     `json:"syncStatus"`
	HealthStatus     string     `json:"healthStatus"`
	HealthMessage    string     `json:"healthMessage,omitempty"`
	Revision         string     `json:"revision"`
	ReconciledAt     string     `json:"reconciledAt"`
	OperationRunning bool       `json:"operationRunning"`
	LastOperation    *Operation `json:"lastOperation,omitempty"`
	Conditions       []string   `json:"conditions,omitempty"`
	AutoSync         bool       `json:"autoSync"`
	OverrideReason   string     `json:"overrideReason,omitempty"`
}

// StatusOf reads the observed state of an Application object.
func StatusOf(app *unstructured.Unstructured) Status {
	s := Status{Name: app.GetName()}
	s.Project = str(app.Object, "spec", "project")
	s.RepoURL = str(app.Object, "spec", "source", "repoURL")
	s.TargetRevision = str(app.Object, "spec", "source", "targetRevision")
	s.SyncStatus = str(app.Object, "status", "sync", "status")
	s.HealthStatus = str(app.Object, "status", "health", "status")
	s.HealthMessage = str(app.Object, "status", "health", "message")
	s.Revision = str(app.Object, "status", "sync", "revision")
	s.ReconciledAt = str(app.Object, "status", "reconciledAt")
	if op, ok, _ := unstructured.NestedMap(app.Object, "operation"); ok && op != nil {
		s.OperationRunning = true
	}
	if opState, ok, _ := unstructured.NestedMap(app.Object, "status", "operationState"); ok && opState != nil {
		op := operationOf(opState)
		s.LastOperation = &op
		if op.Phase == "Running" || op.Phase == "Terminating" {
			s.OperationRunning = true
		}
	}
	conds, _, _ := unstructured.NestedSlice(app.Object, "status", "conditions")
	for _, c := range conds {
		if m, ok := c.(map[string]any); ok {
			s.Conditions = append(s.Conditions, fmt.Sprintf("%v: %v", m["type"], m["message"]))
		}
	}
	enabled, found, _ := unstructured.NestedFieldNoCopy(app.Object, "spec", "syncPolicy", "automated", "enabled")
	if _, hasAuto, _ := unstructured.NestedMap(app.Object, "spec", "syncPolicy", "automated"); hasAuto {
		s.AutoSync = !found || enabled == nil || enabled == true
	}
	s.OverrideReason = app.GetAnnotations()[AnnotationOverride]
	return s
}

// SyncSettling reports an Application whose sync is not settled yet: an operation requested and
// not started, running or terminating, or finished but not reconciled since (its sync status may
// still be the one from before the operation). Its sync status says nothing about drift yet.
func SyncSettling(app *unstructured.Unstructured) bool {
	if op, ok, _ := unstructured.NestedMap(app.Object, "operation"); ok && op != nil {
		return true
	}
	opState, ok, _ := unstructured.NestedMap(app.Object, "status", "operationState")
	if !ok || opState == nil {
		return false
	}
	switch str(opState, "phase") {
	case "Running", "Terminating":
		return true
	}
	finished, err := time.Parse(time.RFC3339, str(opState, "finishedAt"))
	if err != nil {
		return false
	}
	reconciled, err := time.Parse(time.RFC3339, str(app.Object, "status", "reconciledAt"))
	return err != nil || reconciled.Before(finished)
}

func operationOf(opState map[string]any) Operation {
	op := Operation{
		Phase:       str(opState, "phase"),
		Message:     str(opState, "message"),
		StartedAt:   str(opState, "startedAt"),
		FinishedAt:  str(opState, "finishedAt"),
		RequestID:   infoValue(opState, InfoRequestID),
		InitiatedBy: str(opState, "operation", "initiatedBy", "username"),
	}
	op.RetryCount, _, _ = unstructured.NestedInt64(opState, "retryCount")
	return op
}

func str(obj map[string]any, fields ...string) string {
	s, _, _ := unstructured.NestedString(obj, fields...)
	return s
}

func infoValue(opState map[string]any, name string) string {
	info, _, _ := unstructured.NestedSlice(opState, "operation", "info")
	for _, i := range info {
		if m, ok := i.(map[string]any); ok && m["name"] == name {
			v, _ := m["value"].(string)
			return v
		}
	}
	return ""
}

// Status reads an Application's observed state.
func (c *Client) Status(ctx context.Context, name string) (*Status, error) {
	app, err := c.get(ctx, ApplicationGVR, name)
	if err != nil {
		return nil, err
	}
	s := StatusOf(app)
	return &s, nil
}

func newRequestID() string {
	b := make([]byte, 8)
	_, _ = crand.Read(b)
	return hex.EncodeToString(b)
}

// WindowStatus evaluates the deployment windows of a project that apply to app for a manual sync
// at t.
func (c *Client) WindowStatus(ctx context.Context, app *unstructured.Unstructured, t time.Time) (window.Status, error) {
	project := str(app.Object, "spec", "project")
	if project == "" {
		project = "default"
	}
	p, err := c.get(ctx, AppProjectGVR, project)
	if err != nil {
		return window.Status{}, err
	}
	specs := matchingWindows(p, app)
	ws, err := window.Parse(specs, func(i int) string { return fmt.Sprintf("project %s syncWindows[%d]", project, i) })
	if err != nil {
		return window.Status{}, err
	}
	return window.Evaluate(ws, t, true), nil
}

// ProjectWindows returns the deployment windows of an AppProject, all of them.
func ProjectWindows(p *unstructured.Unstructured) []window.Spec {
	return matchingWindows(p, nil)
}

// matchingWindows returns the project's sync windows that apply to app (all when app is nil),
// with Argo CD's selector rules: applications, namespaces and clusters globs, OR unless andOperator.
func matchingWindows(p *unstructured.Unstructured, app *unstructured.Unstructured) []window.Spec {
	sws, _, _ := unstructured.NestedSlice(p.Object, "spec", "syncWindows")
	var out []window.Spec
	for _, sw := range sws {
		m, ok := sw.(map[string]any)
		if !ok {
			continue
		}
		if app != nil && !windowMatches(m, app) {
			continue
		}
		w := window.Spec{}
		w.Kind, _ = m["kind"].(string)
		w.Schedule, _ = m["schedule"].(string)
		w.Duration, _ = m["duration"].(string)
		w.TimeZone, _ = m["timeZone"].(string)
		w.ManualSync, _ = m["manualSync"].(bool)
		w.Description, _ = m["description"].(string)
		out = append(out, w)
	}
	return out
}

func windowMatches(w map[string]any, app *unstructured.Unstructured) bool {
	globs := func(key string) []string {
		l, _ := w[key].([]any)
		var out []string
		for _, v := range l {
			if s, ok := v.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	match := func(patterns []string, values ...string) bool {
		for _, p := range patterns {
			for _, v := range values {
				if ok, _ := path.Match(p, v); ok || p == "*" {
					return true
				}
			}
		}
		return false
	}
	apps, nss, clusters := globs("applications"), globs("namespaces"), globs("clusters")
	destNS := str(app.Object, "spec", "destination", "namespace")
	sel := []struct {
		set bool
		ok  bool
	}{
		{len(apps) > 0, match(apps, app.GetName())},
		{len(nss) > 0, match(nss, destNS)},
		{len(clusters) > 0, match(clusters, str(app.Object, "spec", "destination", "server"), str(app.Object, "spec", "destination", "name"))},
	}
	and, _ := w["andOperator"].(bool)
	any, all, set := false, true, false
	for _, s := range sel {
		if !s.set {
			continue
		}
		set = true
		any = any || s.ok
		all = all && s.ok
	}
	if !set {
		return false
	}
	if and {
		return all
	}
	return any
}

// Sync ensures the Application, requests a sync of it to its digest exactly as Argo CD's API server
// would (never overwriting a running operation), and, unless wait is false, follows the result
// until the application is Synced at the digest and Healthy, or a failure class is certain.
func (c *Client) Sync(ctx context.Context, a App, wait bool, opts SyncOptions) (*Result, error) {
	opts.defaults()
	if opts.WindowPolicy == WindowOverride && strings.TrimSpace(opts.OverrideReason) == "" {
		return nil, &SyncError{Class: ClassPermanent, Summary: "Invalid sync request: window_policy override requires an override_reason", Advice: "Set override_reason to why this deployment may ignore the customer's deployment window; it is recorded on the Application and in the operation."}
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	deadline := opts.Now().Add(opts.Timeout)

	// An application an interrupted override left in the windowless override project goes back
	// first, so that the window below is the one Argo CD applies.
	if msg, err := c.RepairOverride(ctx, a.Name); err != nil {
		opts.progress("warning: could not check application %s for an interrupted override: %v", a.Name, err)
	} else if msg != "" {
		opts.progress("warning: %s", msg)
	}

	// Deployment window, checked before anything is written (automated syncs are Argo CD's to
	// hold).
	override := false
	for !a.AutoSync {
		ws, err := c.WindowStatus(ctx, a.object(), opts.Now())
		if err != nil {
			return nil, &SyncError{Class: ClassPermanent, Summary: "Invalid deployment windows", LastMessage: err.Error(), Advice: "Fix the project's sync windows (ferry_environment deployment_window blocks)."}
		}
		if ws.Open {
			break
		}
		switch opts.WindowPolicy {
		case WindowOverride:
			override = true
		case WindowWait:
			if ws.NextOpen != nil && ws.NextOpen.Before(deadline) {
				opts.progress("deployment window closed (%s); waiting until %s", ws.Reason, ws.NextOpen.Format(time.RFC3339))
				if err := sleepCtx(ctx, ws.NextOpen.Sub(opts.Now())+time.Second); err != nil {
					return nil, windowError(a.Project, ws, opts.Now(), "the timeout ends before the window opens")
				}
				continue
			}
			return nil, windowError(a.Project, ws, opts.Now(), "the window does not open before the timeout")
		default:
			return nil, windowError(a.Project, ws, opts.Now(), "")
		}
		break
	}
	if override {
		return c.syncOverride(ctx, a, wait, opts, deadline)
	}
	app, err := c.ApplyApplication(ctx, a)
	if err != nil {
		return nil, &SyncError{Class: ClassPermanent, Summary: "Unable to write the Application", LastMessage: err.Error(), Advice: "Check that Argo CD's CRDs are installed in the cluster and that the credentials may write Applications in namespace " + c.namespace + "."}
	}
	if a.AutoSync {
		if !wait {
			return resultOf(app), nil
		}
		return c.waitAutomated(ctx, a, opts, deadline)
	}
	return c.syncAndFollow(ctx, a, wait, opts, deadline)
}

func windowError(project string, ws window.Status, now time.Time, extra string) *SyncError {
	e := &SyncError{Class: ClassWindow, NextOpen: ws.NextOpen}
	if ws.NextOpen != nil {
		e.Summary = fmt.Sprintf("deployment window closed for %s; next opens %s (in %s)", project, ws.NextOpen.UTC().Format(time.RFC3339), humanDuration(ws.NextOpen.Sub(now)))
	} else {
		e.Summary = fmt.Sprintf("deployment window closed for %s; it does not open within the search horizon", project)
	}
	e.LastMessage = ws.Reason
	e.Advice = "Wait for the window, set window_policy = \"wait\" to wait within the timeout, or window_policy = \"override\" with an override_reason for an emergency."
	if extra != "" {
		e.Advice = extra + ". " + e.Advice
	}
	return e
}

func humanDuration(d time.Duration) string {
	d = d.Round(time.Minute)
	days := d / (24 * time.Hour)
	d -= days * 24 * time.Hour
	h := d / time.Hour
	m := (d - h*time.Hour) / time.Minute
	switch {
	case days > 0:
		return fmt.Sprintf("%dd%dh", days, h)
	case h > 0:
		return fmt.Sprintf("%dh%dm", h, m)
	}
	return fmt.Sprintf("%dm", m)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// syncAndFollow requests the sync and follows it, retrying transient failures.
func (c *Client) syncAndFollow(ctx context.Context, a App, wait bool, opts SyncOptions, deadline time.Time) (*Result, error) {
	return retryTransient(ctx, opts, func() (*Result, error) {
		rid := newRequestID()
		if err := c.requestSync(ctx, a, rid, opts, ""); err != nil {
			return nil, err
		}
		opts.progress("sync requested: application %s to %s (request %s)", a.Name, a.Digest, rid)
		if !wait {
			app, err := c.get(ctx, ApplicationGVR, a.Name)
			if err != nil {
				return nil, err
			}
			r := resultOf(app)
			r.LastOperation.RequestID = rid
			return r, nil
		}
		return c.follow(ctx, a, rid, opts, deadline)
	})
}

// retryTransient runs one sync attempt, again after a transient failure, up to opts.TransientRetries
// more times with a doubling backoff.
func retryTransient(ctx context.Context, opts SyncOptions, attempt func() (*Result, error)) (*Result, error) {
	backoff := opts.RetryBackoff
	for n := 0; ; n++ {
		res, err := attempt()
		var se *SyncError
		if err != nil && errors.As(err, &se) && se.Class == ClassTransient && n < opts.TransientRetries {
			opts.progress("transient failure (%s); retrying in %s (attempt %d of %d)", se.LastMessage, backoff, n+1, opts.TransientRetries)
			if sleepCtx(ctx, backoff) != nil {
				return nil, err
			}
			backoff *= 2
			continue
		}
		return res, err
	}
}

// requestSync writes the operation as an optimistic-concurrency update: only when no operation is
// in progress, never as part of the applied object.
func (c *Client) requestSync(ctx context.Context, a App, rid string, opts SyncOptions, overrideReason string) error {
	var waitedConflict bool
	conflictUntil := opts.Now().Add(opts.ConflictWait)
	pickupUntil := opts.Now().Add(opts.PickupTimeout)
	for attempt := 0; ; attempt++ {
		app, err := c.get(ctx, ApplicationGVR, a.Name)
		if err != nil {
			return &SyncError{Class: ClassTransient, Summary: "Unable to read the Application", LastMessage: err.Error()}
		}
		if app.GetDeletionTimestamp() != nil {
			return &SyncError{Class: ClassPermanent, Summary: "Sync refused: the application is being deleted"}
		}
		if running, who, since := operationInProgress(app); running {
			if opts.Now().Before(conflictUntil) {
				if !waitedConflict {
					opts.progress("another operation (started by %s at %s) is running; waiting up to %s", who, since, opts.ConflictWait)
					waitedConflict = true
				}
				if sleepCtx(ctx, time.Second) != nil {
					return conflictError(who, since)
				}
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
			if opts.Now().After(pickupUntil) {
				return &SyncError{Class: ClassStuck, Summary: "Sync stuck: Argo CD has not reconciled the application", Advice: "Check that the application controller is running, watches namespace " + c.namespace + " and that the app's shard is served."}
			}
			if sleepCtx(ctx, 200*time.Millisecond) != nil {
				return ctx.Err()
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
		return &SyncError{Class: ClassTransient, Summary: "Unable to request the sync", LastMessage: err.Error()}
	}
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

// watchApp calls fn with the Application whenever it changes and at least every second, until fn
// says done or ctx ends. Expired or broken watches are re-established from a fresh read.
func (c *Client) watchApp(ctx context.Context, name string, fn func(app *unstructured.Unstructured) (bool, error)) error {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		app, err := c.res(ApplicationGVR).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if isNotFound(err) {
				return &SyncError{Class: ClassPermanent, Summary: "Application " + name + " was deleted while ferry was waiting"}
			}
			if sleepCtx(ctx, time.Second) != nil {
				return ctx.Err()
			}
			continue
		}
		if done, err := fn(app); done {
			return err
		}
		w, err := c.res(ApplicationGVR).Watch(ctx, metav1.ListOptions{
			FieldSelector:   fields.OneTermEqualSelector("metadata.name", name).String(),
			ResourceVersion: app.GetResourceVersion(),
		})
		if err != nil {
			if sleepCtx(ctx, time.Second) != nil {
				return ctx.Err()
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
					app = u
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
	last         *unstructured.Unstructured
	rollout      rolloutWatch
	unpicked     bool // the controller did not pick up the request in time
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
		return done, err
	})
	if err != nil && ctx.Err() != nil {
		// The overall timeout: take back our own operation (terminated if it runs, withdrawn if
		// it was never picked up) and report.
		return nil, f.timeout()
	}
	var se *SyncError
	if f.unpicked && errors.As(err, &se) {
		se.Advice += " " + f.abandon()
	}
	return res, err
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
	switch op.Phase {
	case "Running", "Terminating":
		// The health timeout and the Degraded grace count from the end of the operation (a wait
		// may have seen the application at the digest before Argo CD's automated sync started).
		f.succeeded, f.degraded = time.Time{}, time.Time{}
		if strings.Contains(op.Message, "blocked by sync window") {
			if strings.Contains(op.Message, "invalid sync windows") {
				return nil, true, &SyncError{Class: ClassPermanent, Summary: "Sync blocked: the project's sync windows are invalid", LastMessage: op.Message, RequestID: f.rid}
			}
			if f.opts.WindowPolicy == WindowWait {
				return nil, false, nil
			}
			if f.anyOp {
				return nil, true, &SyncError{Class: ClassWindow, Summary: "deployment window closed for " + f.a.Project, LastMessage: op.Message, RequestID: f.rid,
					Advice: "Argo CD holds the operation behind its deployment window; ferry did not request it and leaves it queued. Wait with --window-policy wait, or stop it with `ferry app terminate " + f.a.Name + "`."}
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
		if op.Message == "Operation terminated" {
			return nil, true, &SyncError{Class: ClassPermanent, Summary: "Sync failed: the operation was terminated by someone else", LastMessage: op.Message, RequestID: f.rid}
		}
		if strings.Contains(op.Message, controllerSyncTimeout) {
			return nil, true, &SyncError{Class: ClassStuck, Summary: "Sync stuck: Argo CD's controller sync timeout ended the operation: " + firstNonEmpty(f.waiting, op.Message),
				LastMessage: op.Message, RequestID: f.rid, Resources: failingResources(app),
				Advice: "The application controller runs with --sync-timeout (controller.sync.timeout.seconds) and terminated the operation. Look at the resource it waited for, fix it, and apply again."}
		}
		class := classifyMessage(op.Message, app)
		resources := failingResources(app)
		summary := "Sync failed"
		if len(resources) > 0 {
			summary = fmt.Sprintf("Sync failed: %s: %s", resources[0].String(), firstNonEmpty(resources[0].Message, op.Message))
		} else {
			summary = "Sync failed: " + op.Message
		}
		advice := "Fix the manifests or the environment named above and apply again."
		if class == ClassTransient {
			summary = "Sync failed transiently: " + op.Message
			advice = "The cluster or registry was unreachable; ferry retried. Check connectivity and apply again."
		}
		return nil, true, &SyncError{Class: class, Summary: summary, LastMessage: op.Message, Resources: resources, RequestID: f.rid, Advice: advice}
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

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// invalidSpec returns the message of an InvalidSpecError or UnknownError condition.
func invalidSpec(app *unstructured.Unstructured) string {
	conds, _, _ := unstructured.NestedSlice(app.Object, "status", "conditions")
	for _, c := range conds {
		if m, ok := c.(map[string]any); ok && (m["type"] == "InvalidSpecError") {
			return fmt.Sprint(m["message"])
		}
	}
	return ""
}

// transientMarkers are network and availability texts that make a failure worth retrying.
var transientMarkers = []string{"Unavailable", "DeadlineExceeded", "context deadline exceeded", "connection refused", "i/o timeout",
	"TLS handshake timeout", "no such host", "connection reset", "Failed to get destination cluster", "failed to load openAPISchema",
	"the server is currently unable to handle the request", "429", "502", "503", "504", "EOF"}

// classifyMessage decides transient or permanent for a failed operation.
func classifyMessage(msg string, app *unstructured.Unstructured) Class {
	if strings.Contains(msg, controllerSyncTimeout) {
		return ClassStuck
	}
	permanent := []string{"authentication required", "401", "403", "repository not found", "app path does not exist",
		"not permitted in project", "synchronization tasks are not valid", "failed to apply", "Shared resource found", "is invalid", "field is immutable", "forbidden", "expected only a single oci content layer"}
	for _, p := range permanent {
		if strings.Contains(msg, p) {
			return ClassPermanent
		}
	}
	for _, t := range transientMarkers {
		if strings.Contains(msg, t) {
			return ClassTransient
		}
	}
	return ClassPermanent
}

// failingResources lists the resources of the last sync result that failed, then the unhealthy
// ones Argo CD reports.
// pruneConfirmationPrefix starts the message of an operation that waits for a Prune=confirm
// resource to be approved.
const pruneConfirmationPrefix = "waiting for pruning confirmation of "

// approvalError is the approval class for a running operation with message msg, or nil when the
// operation is not waiting for a confirmation.
func approvalError(namespace, app, msg, rid string, now time.Time) *SyncError {
	if !strings.HasPrefix(msg, pruneConfirmationPrefix) {
		return nil
	}
	return &SyncError{Class: ClassApproval, Summary: "Sync needs approval: Argo CD waits for a pruning confirmation", LastMessage: msg, RequestID: rid,
		Resources: waitingFor(msg, pruneConfirmationPrefix, "RequiresPruningConfirmation"),
		Advice:    fmt.Sprintf("Approve with: kubectl -n %s annotate application %s %s=%s", namespace, app, AnnotationDeletionApproved, now.UTC().Format(time.RFC3339))}
}

// waitingFor returns the resource a Running operation's message names after prefix, in Argo CD's
// "<group>/<kind>/<name>[ and N more resources]" form, with status.
func waitingFor(msg, prefix, status string) []Resource {
	rest, ok := strings.CutPrefix(msg, prefix)
	if !ok {
		return nil
	}
	rest, _, _ = strings.Cut(rest, " and ")
	parts := strings.SplitN(rest, "/", 3)
	if len(parts) != 3 || parts[1] == "" || parts[2] == "" {
		return nil
	}
	return []Resource{{Group: parts[0], Kind: parts[1], Name: parts[2], Status: status}}
}

func failingResources(app *unstructured.Unstructured) []Resource {
	if app == nil {
		return nil
	}
	var out []Resource
	res, _, _ := unstructured.NestedSlice(app.Object, "status", "operationState", "syncResult", "resources")
	for _, r := range res {
		m, ok := r.(map[string]any)
		if !ok {
			continue
		}
		status, _ := m["status"].(string)
		if status != "SyncFailed" {
			continue
		}
		out = append(out, resourceOf(m, status))
	}
	live, _, _ := unstructured.NestedSlice(app.Object, "status", "resources")
	for _, r := range live {
		m, ok := r.(map[string]any)
		if !ok {
			continue
		}
		h, _ := m["health"].(map[string]any)
		hs, _ := h["status"].(string)
		if hs == "Degraded" || hs == "Missing" || hs == "Progressing" {
			res := resourceOf(m, hs)
			res.Message, _ = h["message"].(string)
			if !slices.ContainsFunc(out, func(o Resource) bool { return o.Kind == res.Kind && o.Name == res.Name && o.Namespace == res.Namespace }) {
				out = append(out, res)
			}
		}
	}
	if len(out) == 0 {
		// Argo CD names the culprit in the health message: "Caused by apps/Deployment:ns/name".
		if msg := str(app.Object, "status", "health", "message"); strings.HasPrefix(msg, "Caused by ") {
			ref := strings.TrimPrefix(msg, "Caused by ")
			ref, _, _ = strings.Cut(ref, ",")
			gk, nsName, _ := strings.Cut(ref, ":")
			group, kind, found := strings.Cut(gk, "/")
			if !found {
				group, kind = "", gk
			}
			ns, name, found := strings.Cut(nsName, "/")
			if !found {
				ns, name = "", nsName
			}
			out = append(out, Resource{Group: group, Kind: kind, Namespace: ns, Name: strings.TrimSpace(name), Status: str(app.Object, "status", "health", "status")})
		}
	}
	return out
}

func resourceOf(m map[string]any, status string) Resource {
	r := Resource{Status: status}
	r.Group, _ = m["group"].(string)
	r.Kind, _ = m["kind"].(string)
	r.Namespace, _ = m["namespace"].(string)
	r.Name, _ = m["name"].(string)
	r.Message, _ = m["message"].(string)
	return r
}

func pruneSkipped(opState map[string]any) int {
	n := 0
	res, _, _ := unstructured.NestedSlice(opState, "syncResult", "resources")
	for _, r := range res {
		if m, ok := r.(map[string]any); ok && m["status"] == "PruneSkipped" {
			n++
		}
	}
	return n
}

// annotationRefresh asks Argo CD to compare an application again; the controller removes it
// when it did.
const annotationRefresh = "argocd.argoproj.io/refresh"

// controllerSyncTimeout ends the message of an operation the controller's --sync-timeout ended
// (docs/sync.md, failure classes).
const controllerSyncTimeout = "triggered by controller sync timeout"

// outOfSyncResources lists the resources Argo CD reports OutOfSync.
func outOfSyncResources(app *unstructured.Unstructured) []Resource {
	var out []Resource
	live, _, _ := unstructured.NestedSlice(app.Object, "status", "resources")
	for _, r := range live {
		if m, ok := r.(map[string]any); ok && m["status"] == "OutOfSync" {
			out = append(out, resourceOf(m, "OutOfSync"))
		}
	}
	return out
}

// outOfSyncSettle is how long an application must have been seen OutOfSync after its operation
// succeeded before ferry asks for the refresh that decides it: the controller compares against its
// cluster cache, which the watch of the applied objects updates a moment after the apply, and a
// comparison made before that (even one ferry asked for) is a stale OutOfSync that the next
// resource event clears. Seen in BenchmarkReactionLatency: a ConfigMap reported OutOfSync by two
// comparisons within a second of the sync that configured it.
const outOfSyncSettle = 10 * time.Second

// outOfSyncWatch decides when an application still OutOfSync at the digest after its operation
// succeeded (and reconciled since, with no resources left for pruning) has failed: once it has
// been seen so for outOfSyncSettle, it asks Argo CD for a refresh, and once the controller has
// processed it — the annotation is gone and reconciledAt moved past its value when ferry asked
// — an application still OutOfSync differs from what the sync applied (docs/sync.md, "still
// OutOfSync"). Events older than the refresh have no annotation either, but not a later reconciledAt.
type outOfSyncWatch struct {
	// refresh asks Argo CD for a refresh (Client.refresh, or a fake in tests).
	refresh  func(ctx context.Context, name string) (*unstructured.Unstructured, error)
	since    time.Time // first seen OutOfSync after the operation
	requests int       // refreshes asked for
	sent     time.Time // when the last was asked for
	version  string    // the Application's resourceVersion the last refresh wrote
	base     time.Time // its reconciledAt then
}

// failure observes app (reconciled at reconciled) and returns the permanent failure, or nil while
// it waits.
func (w *outOfSyncWatch) failure(ctx context.Context, app *unstructured.Unstructured, reconciled, now time.Time, rid string) *SyncError {
	if w.since.IsZero() {
		w.since = now
	}
	if now.Sub(w.since) < outOfSyncSettle {
		return nil
	}
	_, pending := app.GetAnnotations()[annotationRefresh]
	// reconciledAt has a one-second resolution: a refresh processed within the second of the
	// previous comparison leaves it unchanged, so ask again (a few times, a second apart) rather
	// than wait for the periodic resync.
	again := w.requests > 0 && w.requests < 4 && !pending && newerVersion(app.GetResourceVersion(), w.version) &&
		!reconciled.After(w.base) && now.Sub(w.sent) >= time.Second
	if w.requests == 0 || again {
		w.requests++
		w.sent = now
		if patched, err := w.refresh(ctx, app.GetName()); err == nil {
			w.base, _ = time.Parse(time.RFC3339, str(patched.Object, "status", "reconciledAt"))
			w.version = patched.GetResourceVersion()
		}
		return nil
	}
	if pending || w.base.IsZero() || !reconciled.After(w.base) {
		return nil
	}
	resources := outOfSyncResources(app)
	summary := "Sync incomplete: still OutOfSync after the sync"
	if len(resources) > 0 {
		summary += ": " + resources[0].String()
	}
	return &SyncError{Class: ClassPermanent, Summary: summary, LastMessage: str(app.Object, "status", "operationState", "message"), Resources: resources, RequestID: rid,
		Advice: "Argo CD applied the bundle, but the live objects still differ from it: a field the API server drops or rewrites " +
			"(an unknown field pruned by a CRD's schema, a normalized value, a mutating webhook) or another controller changing them. Fix the manifests so they match what the cluster keeps."}
}

// newerVersion reports whether resourceVersion a is later than b (etcd revisions; false when
// either is not a number).
func newerVersion(a, b string) bool {
	x, err1 := strconv.ParseUint(a, 10, 64)
	y, err2 := strconv.ParseUint(b, 10, 64)
	return err1 == nil && err2 == nil && x > y
}

// refresh asks Argo CD for a normal refresh through the annotation.
func (c *Client) refresh(ctx context.Context, name string) (*unstructured.Unstructured, error) {
	patch := `{"metadata":{"annotations":{"` + annotationRefresh + `":"normal"}}}`
	return c.res(ApplicationGVR).Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{FieldManager: FieldManager + "-refresh"})
}

// Wait follows an Application until it is Synced at digest and Healthy, or a failure class is
// certain, without requesting anything: the observe loop of Sync, for any operation to the digest
// (or none), so that the timeout, health timeout, stuck-after, crash-loop, window and approval
// rules apply as they do to ferry's own sync. Unlike Sync it terminates and withdraws nothing.
func (c *Client) Wait(ctx context.Context, name, digest string, opts SyncOptions) (*Result, error) {
	opts.defaults()
	return c.waitAutomated(ctx, App{Name: name, Digest: digest}, opts, opts.Now().Add(opts.Timeout))
}

// waitAutomated follows a (with automated sync, or any operation to a.Digest) as Wait does, until
// deadline: the applied spec turned automated sync on; this waits for Argo CD's own sync to reach
// the digest.
func (c *Client) waitAutomated(ctx context.Context, a App, opts SyncOptions, deadline time.Time) (*Result, error) {
	f := c.newFollower(a, "", opts)
	f.anyOp = true
	return f.run(ctx, deadline)
}

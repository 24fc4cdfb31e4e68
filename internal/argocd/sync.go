package argocd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/ferry-dev/terraform-provider-ferry/internal/kube"
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

// Defaults of SyncOptions: what a zero field means. The CLI's flags, the provider's schema and
// docs/cli.md and docs/sync.md take their defaults from here (tests check that they agree).
const (
	// DefaultTimeout bounds a whole sync or wait.
	DefaultTimeout = 20 * time.Minute
	// DefaultHealthTimeout bounds the wait for Healthy after the operation, past Kubernetes'
	// 10-minute progress deadline.
	DefaultHealthTimeout = 11 * time.Minute
	// DefaultStuckAfter is how long an operation may show the same message before it is stuck.
	DefaultStuckAfter = 5 * time.Minute
	// DefaultPickupTimeout bounds the wait for the controller to pick up a written operation.
	DefaultPickupTimeout = time.Minute
	// DefaultDegradedGrace is how long an application may stay Degraded or Missing after the
	// operation.
	DefaultDegradedGrace = 30 * time.Second
	// DefaultConflictWait is how long a sync waits for another operation to finish: not at all.
	DefaultConflictWait time.Duration = 0
	// DefaultTransientRetries is how many times ferry retries a transient failure.
	DefaultTransientRetries = 3
	// DefaultRetryBackoff is the first wait between transient retries, doubled each time.
	DefaultRetryBackoff = 5 * time.Second
	// DefaultWindowPolicy is what a closed deployment window does.
	DefaultWindowPolicy = WindowFail
)

// DefaultSyncOptions provides the default SyncOptions: the values its zero fields take.
var DefaultSyncOptions = SyncOptions{
	Timeout:          DefaultTimeout,
	HealthTimeout:    DefaultHealthTimeout,
	StuckAfter:       DefaultStuckAfter,
	PickupTimeout:    DefaultPickupTimeout,
	DegradedGrace:    DefaultDegradedGrace,
	ConflictWait:     DefaultConflictWait,
	TransientRetries: DefaultTransientRetries,
	RetryBackoff:     DefaultRetryBackoff,
	WindowPolicy:     DefaultWindowPolicy,
}

// ShortDuration formats d as docs and the provider's attributes write it: 20m, 1h30m, 1m30s, 30s
// rather than time.Duration's 20m0s and 1h30m0s.
func ShortDuration(d time.Duration) string { return kube.ShortDuration(d) }

// SyncOptions tune a sync. Zero values mean the defaults (DefaultSyncOptions).
type SyncOptions struct {
	// Timeout bounds the whole sync. Default DefaultTimeout (20m).
	Timeout time.Duration
	// HealthTimeout bounds the wait for Healthy after the operation succeeded. Default
	// DefaultHealthTimeout (11m, past Kubernetes' 10-minute progress deadline).
	HealthTimeout time.Duration
	// StuckAfter is how long a running operation may show the same message before ferry
	// terminates it and reports it stuck. Default DefaultStuckAfter (5m).
	StuckAfter time.Duration
	// PickupTimeout bounds the wait for the controller to pick up a written operation. Default
	// DefaultPickupTimeout (1m).
	PickupTimeout time.Duration
	// DegradedGrace is how long the application may stay Degraded after the operation before the
	// sync fails. Default DefaultDegradedGrace (30s).
	DegradedGrace time.Duration
	// ConflictWait is how long to wait for another operation to finish before failing with
	// ClassConflict. Default 0: fail at once.
	ConflictWait time.Duration
	// TransientRetries bounds ferry's own retries of transient failures. Default
	// DefaultTransientRetries (3); <0 disables.
	TransientRetries int
	// RetryBackoff is the first wait between transient retries, doubled each time. Default
	// DefaultRetryBackoff (5s).
	RetryBackoff time.Duration
	// WindowPolicy decides what a closed window does. Default DefaultWindowPolicy (WindowFail).
	WindowPolicy WindowPolicy
	// OverrideReason is required with WindowOverride and recorded on the Application and in the
	// operation info.
	OverrideReason string
	// RunID (HCP Terraform's TFC_RUN_ID) is recorded in the operation info when set.
	RunID string
	// VerifyBundle verifies the bundle's signature when the environment has a signature policy
	// (Environment.TrustedKeys). Nil: a sync of such an environment fails.
	VerifyBundle BundleVerifier
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
	def(&o.Timeout, DefaultTimeout)
	def(&o.HealthTimeout, DefaultHealthTimeout)
	def(&o.StuckAfter, DefaultStuckAfter)
	def(&o.PickupTimeout, DefaultPickupTimeout)
	def(&o.DegradedGrace, DefaultDegradedGrace)
	def(&o.RetryBackoff, DefaultRetryBackoff)
	if o.TransientRetries == 0 {
		o.TransientRetries = DefaultTransientRetries
	}
	if o.WindowPolicy == "" {
		o.WindowPolicy = DefaultWindowPolicy
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
	// The environment's signature policy is checked on the same read of the project, before
	// anything is written.
	override, policyChecked := false, false
	for !a.AutoSync {
		ws, project, err := c.windowStatus(ctx, a, opts)
		if err != nil {
			return nil, err
		}
		if !policyChecked {
			if err := checkPolicy(ctx, project, a, opts.VerifyBundle); err != nil {
				return nil, err
			}
			policyChecked = true
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
	if a.AutoSync {
		if err := c.CheckSignaturePolicy(ctx, a, opts.VerifyBundle); err != nil {
			return nil, err
		}
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

// windowStatus evaluates the deployment windows that apply to a now, retrying a transient failure
// to read the project as retryTransient retries a sync. Invalid windows (a schedule or a scope
// glob ferry refuses) are permanent; any other error is classified as an API error.
func (c *Client) windowStatus(ctx context.Context, a App, opts SyncOptions) (window.Status, *unstructured.Unstructured, error) {
	var ws window.Status
	var project *unstructured.Unstructured
	name := a.Project
	if name == "" {
		name = "default"
	}
	_, err := retryTransient(ctx, opts, func() (*Result, error) {
		var err error
		if project, err = c.get(ctx, AppProjectGVR, name); err == nil {
			ws, err = ProjectWindowStatus(project, a.object(), opts.Now())
		}
		switch {
		case errors.Is(err, window.ErrInvalidWindow):
			return nil, &SyncError{Class: ClassPermanent, Summary: "Invalid deployment windows", LastMessage: err.Error(), Advice: "Fix the project's sync windows (ferry_environment deployment_window blocks)."}
		case err != nil:
			return nil, &SyncError{Class: apiErrorClass(err), Summary: "Unable to read the environment's project", LastMessage: err.Error(),
				Advice: "Check that the cluster is reachable, that the environment " + a.Project + " exists in namespace " + c.namespace + ", and that the credentials may read AppProjects there."}
		}
		return nil, nil
	})
	return ws, project, err
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
		if err != nil && errors.As(err, &se) && se.Class == ClassTransient && !se.final && n < opts.TransientRetries {
			opts.progress("transient failure (%s); retrying in %s (attempt %d of %d)", se.LastMessage, backoff, n+1, opts.TransientRetries)
			if sleepCtx(ctx, backoff) != nil {
				return nil, err
			}
			backoff *= 2
			continue
		}
		if res != nil {
			res.Retries = n
		}
		return res, err
	}
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

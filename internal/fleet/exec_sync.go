package fleet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/ferry-dev/terraform-provider-ferry/internal/argocd"
)

// SyncExecutor applies a bundle by pointing the target's existing Application at the bundle's
// digest and syncing it with ferry's sync engine (internal/argocd), for releases that change only
// manifests. The Application must exist (ferry_application, or any other tool, created it); only
// its spec.source.targetRevision is changed.
type SyncExecutor struct {
	client *argocd.Client
	opts   argocd.SyncOptions
}

// NewSyncExecutor returns a sync executor over c. opts tune the sync engine; its WindowPolicy is
// always argocd.WindowFail, since the rollout itself defers targets whose window is closed, and
// OnProgress is replaced by the target's output.
func NewSyncExecutor(c *argocd.Client, opts argocd.SyncOptions) *SyncExecutor {
	return &SyncExecutor{client: c, opts: opts}
}

// Name returns "sync".
func (e *SyncExecutor) Name() string { return "sync" }

// Apply patches the Application's targetRevision to b.Digest, then syncs it and waits until it is
// Synced at the digest and Healthy, or fails with the engine's *argocd.SyncError (its class is the
// target's failure class; ClassWindow makes the rollout defer the target).
func (e *SyncExecutor) Apply(ctx context.Context, t Target, b Bundle, out io.Writer) error {
	name := t.AppName()
	fmt.Fprintf(out, "setting Application %s targetRevision to %s\n", name, b.Digest)
	live, err := e.client.SetTargetRevision(ctx, name, b.Digest)
	if err != nil {
		if errors.Is(err, argocd.ErrNotFound) {
			return &ClassError{Class: string(argocd.ClassPermanent), Err: fmt.Errorf("application %s does not exist; the sync executor only syncs existing Applications: %w", name, err)}
		}
		return &ClassError{Class: string(argocd.APIErrorClass(err)), Err: err}
	}
	a := argocd.AppFromLive(live)
	if a.Digest != b.Digest {
		// The patch took: anything else means the Application has no spec.source (a multi-source
		// Application), which the sync engine does not drive.
		return &ClassError{Class: string(argocd.ClassPermanent), Err: fmt.Errorf("application %s has no spec.source to point at %s", name, b.Digest)}
	}
	if want := "oci://" + b.Reference; b.Reference != "" && a.RepoURL != want {
		fmt.Fprintf(out, "warning: Application %s reads %s, not the bundle's repository %s\n", name, a.RepoURL, want)
	}
	opts := e.opts
	opts.WindowPolicy = argocd.WindowFail
	opts.OverrideReason = ""
	opts.OnProgress = func(s string) { fmt.Fprintf(out, "%s %s\n", time.Now().UTC().Format(time.TimeOnly), s) }
	res, err := e.client.Sync(ctx, a, true, opts)
	if err != nil {
		var se *argocd.SyncError
		if errors.As(err, &se) {
			fmt.Fprintf(out, "sync failed (%s): %s\n%s", se.Class, se.Error(), se.Detail())
		} else {
			fmt.Fprintf(out, "sync failed: %v\n", err)
		}
		return err
	}
	if res != nil {
		fmt.Fprintf(out, "synced: %s, %s at %s\n", res.SyncStatus, res.HealthStatus, res.Revision)
	}
	return nil
}

// syncSettings are the sync executor's settings in fleet.yaml: the sync engine's knobs.
var syncSettings = []string{"timeout", "healthTimeout", "stuckAfter"}

// newSyncExecutorFromSettings is the sync executor's ExecutorFactory.
func newSyncExecutorFromSettings(settings *yaml.Node, env ExecutorEnv) (Executor, error) {
	if env.Client == nil {
		return nil, errors.New("the sync executor needs the cluster where Argo CD runs")
	}
	opts := env.SyncOptions
	if settings != nil {
		var errs []error
		for i := 0; i+1 < len(settings.Content); i += 2 {
			k, v := settings.Content[i], settings.Content[i+1]
			var d *time.Duration
			switch k.Value {
			case "timeout":
				d = &opts.Timeout
			case "healthTimeout":
				d = &opts.HealthTimeout
			case "stuckAfter":
				d = &opts.StuckAfter
			default:
				errs = append(errs, env.Errorf(k, k.Value, "unknown field of the sync executor; known fields are type, %s", strings.Join(syncSettings, ", ")))
				continue
			}
			parsed, err := time.ParseDuration(v.Value)
			if v.Kind != yaml.ScalarNode || err != nil || parsed <= 0 {
				errs = append(errs, env.Errorf(v, k.Value, "%q is not a positive duration; use e.g. 90s or 20m", v.Value))
				continue
			}
			*d = parsed
		}
		if len(errs) > 0 {
			return nil, errors.Join(errs...)
		}
	}
	return NewSyncExecutor(env.Client, opts), nil
}

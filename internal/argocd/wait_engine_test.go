package argocd_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/ferry-dev/terraform-provider-ferry/internal/argocd"
)

// wantClass fails t unless err is a SyncError of class want whose summary contains summary,
// returned within limit of start.
func wantClass(t *testing.T, what string, err error, want argocd.Class, summary string, start time.Time, limit time.Duration) *argocd.SyncError {
	t.Helper()
	var se *argocd.SyncError
	if !errors.As(err, &se) || se.Class != want || !strings.Contains(se.Summary, summary) {
		t.Fatalf("%s = %v, want class %s with %q", what, err, want, summary)
	}
	if took := time.Since(start); took > limit {
		t.Errorf("%s took %s, want at most %s", what, took.Round(time.Second), limit)
	}
	return se
}

// TestWaitHealthTimeout: Wait applies the health timeout as Sync does. The operation (one wave)
// succeeds, the Deployment never becomes ready (its Pod is never scheduled), and Wait reports
// stuck once the application was not Healthy for --health-timeout after the sync — long before
// the timeout.
func TestWaitHealthTimeout(t *testing.T) {
	t.Parallel()
	_, c, a := setup(t, "wait-health", map[string]string{"deploy.yaml": neverReady})
	ctx := context.Background()
	if _, err := c.Sync(ctx, a, false, argocd.SyncOptions{Timeout: time.Minute}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := c.Wait(ctx, a.Name, a.Digest, argocd.SyncOptions{Timeout: 3 * time.Minute, HealthTimeout: 5 * time.Second})
	wantClass(t, "Wait(health timeout 5s)", err, argocd.ClassStuck, "not healthy 5s after the sync", start, 90*time.Second)
}

// TestWaitStuckAfter: Wait applies stuck-after to an operation it did not request (here one that
// waits for healthy state of a Deployment forever) and reports it stuck, but leaves it running:
// Wait requests, terminates and withdraws nothing.
func TestWaitStuckAfter(t *testing.T) {
	t.Parallel()
	e, c, a := setup(t, "wait-stuck", map[string]string{"deploy.yaml": neverReady, "later.yaml": laterWave})
	ctx := context.Background()
	res, err := c.Sync(ctx, a, false, argocd.SyncOptions{Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Terminate(context.Background(), a.Name) })
	start := time.Now()
	_, err = c.Wait(ctx, a.Name, a.Digest, argocd.SyncOptions{Timeout: 3 * time.Minute, StuckAfter: 5 * time.Second})
	se := wantClass(t, "Wait(stuck after 5s)", err, argocd.ClassStuck, "no progress for 5s", start, 90*time.Second)
	if se.RequestID != res.LastOperation.RequestID {
		t.Errorf("stuck error names request %q, want the operation's %q", se.RequestID, res.LastOperation.RequestID)
	}
	app := e.ArgoCD.WaitApplication(t, a.Name, func(*unstructured.Unstructured) bool { return true }, time.Minute)
	if op := argocd.StatusOf(app).LastOperation; op == nil || op.Phase != "Running" {
		t.Errorf("operation after Wait = %+v, want it left Running", op)
	}
}

// TestWaitDeadline: Wait and an automated sync's wait end at their timeout (class timeout, "Wait
// timed out") when nothing else decides first, and leave the operation alone.
func TestWaitDeadline(t *testing.T) {
	t.Parallel()
	_, c, a := setup(t, "wait-deadline", map[string]string{"deploy.yaml": neverReady, "later.yaml": laterWave})
	ctx := context.Background()
	if _, err := c.Sync(ctx, a, false, argocd.SyncOptions{Timeout: time.Minute}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Terminate(context.Background(), a.Name) })
	start := time.Now()
	_, err := c.Wait(ctx, a.Name, a.Digest, argocd.SyncOptions{Timeout: 8 * time.Second})
	wantClass(t, "Wait(timeout 8s)", err, argocd.ClassTimeout, "Wait timed out after 8s", start, 20*time.Second)

	auto := a
	auto.AutoSync = true
	start = time.Now()
	_, err = c.Sync(ctx, auto, true, argocd.SyncOptions{Timeout: 20 * time.Second})
	wantClass(t, "Sync(auto_sync, timeout 20s)", err, argocd.ClassTimeout, "timed out after 20s", start, 35*time.Second)
}

// TestAutoSyncHealthTimeout: auto_sync's health_timeout has effect: Argo CD's automated sync
// succeeds, the Deployment never becomes ready, and the sync is reported stuck after the health
// timeout instead of running into the timeout.
func TestAutoSyncHealthTimeout(t *testing.T) {
	t.Parallel()
	_, c, a := setup(t, "auto-health", map[string]string{"deploy.yaml": neverReady})
	a.AutoSync = true
	start := time.Now()
	_, err := c.Sync(context.Background(), a, true, argocd.SyncOptions{Timeout: 3 * time.Minute, HealthTimeout: 5 * time.Second})
	wantClass(t, "Sync(auto_sync, health timeout 5s)", err, argocd.ClassStuck, "not healthy 5s after the sync", start, 2*time.Minute)
}

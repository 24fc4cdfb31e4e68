package argocd_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/ferry-dev/terraform-provider-ferry/internal/argocd"
	"github.com/ferry-dev/terraform-provider-ferry/internal/testenv"
	"github.com/ferry-dev/terraform-provider-ferry/internal/window"
)

// closeWindow gives the environment name the deny window w (applied to every application).
func closeWindow(t *testing.T, e *testenv.Env, c *argocd.Client, name string, w window.Spec) {
	t.Helper()
	env := environment(e, name)
	env.Windows = []window.Spec{w}
	if err := c.ApplyEnvironment(context.Background(), env); err != nil {
		t.Fatal(err)
	}
}

// held reports an Application whose requested operation the controller holds behind a window.
func held(app *unstructured.Unstructured) bool {
	op, _, _ := unstructured.NestedMap(app.Object, "operation")
	msg, _, _ := unstructured.NestedString(app.Object, "status", "operationState", "message")
	return op != nil && strings.Contains(msg, "blocked by sync window")
}

// TestOverrideHeldForeignOperation: an operation another client requested (written to the
// Application as Argo CD's API server does) and that the controller holds behind a closed deny
// window makes an override fail as a conflict naming it, before anything moves: the Application
// stays in its project, no override project is written, and the foreign operation is still held.
func TestOverrideHeldForeignOperation(t *testing.T) {
	e, c, a := setup(t, "ov-conflict", map[string]string{"cm.yaml": cm("a", "1")})
	ctx := context.Background()
	if _, err := c.Sync(ctx, a, true, argocd.SyncOptions{Timeout: 2 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	closeWindow(t, e, c, a.Name, window.Spec{Kind: "deny", Schedule: "* * * * *", Duration: "1h", Description: "freeze"})
	e.ArgoCD.RequestSync(t, a.Name, a.Digest)
	e.ArgoCD.WaitApplication(t, a.Name, held, time.Minute)

	_, err := c.Sync(ctx, a, true, argocd.SyncOptions{Timeout: time.Minute, WindowPolicy: argocd.WindowOverride, OverrideReason: "INC-1"})
	var se *argocd.SyncError
	if !errors.As(err, &se) || se.Class != argocd.ClassConflict || !strings.Contains(se.Summary, "started by ferry-testenv") {
		t.Fatalf("override Sync() against a held foreign operation = %v, want a conflict naming ferry-testenv", err)
	}
	if _, err := c.GetProject(ctx, argocd.OverrideProjectName(a.Project)); !errors.Is(err, argocd.ErrNotFound) {
		t.Errorf("override project after the refused override: %v, want not found", err)
	}
	// Give the controller time to act on anything ferry might have released.
	time.Sleep(5 * time.Second)
	app := e.ArgoCD.Application(t, a.Name)
	if p := argocd.StatusOf(app).Project; p != a.Project {
		t.Errorf("project after the refused override = %q, want %q", p, a.Project)
	}
	if app.GetAnnotations()[argocd.AnnotationOverride] != "" {
		t.Errorf("the refused override annotated the Application: %v", app.GetAnnotations())
	}
	if !held(app) {
		t.Errorf("the foreign operation is no longer held: operation %v, status %v", app.Object["operation"], app.Object["status"].(map[string]any)["operationState"])
	}
	if _, err := c.Terminate(ctx, a.Name); err != nil {
		t.Error(err)
	}
}

// TestFailWindowSkewWithdraws: ferry's clock says the deny window is shut (12 hours ahead) while
// the controller's says it is open, so the controller holds ferry's operation; with window_policy
// fail ferry reports the window class and withdraws its operation first: nothing stays queued to
// run when the window opens.
func TestFailWindowSkewWithdraws(t *testing.T) {
	e, c, a := setup(t, "fail-skew", map[string]string{"cm.yaml": cm("a", "1")})
	ctx := context.Background()
	if _, err := c.Sync(ctx, a, true, argocd.SyncOptions{Timeout: 2 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	// A daily deny window from 30 minutes ago for 2 hours: closed now, open 12 hours from now.
	start := time.Now().UTC().Add(-30 * time.Minute)
	closeWindow(t, e, c, a.Name, window.Spec{Kind: "deny", Schedule: fmt.Sprintf("%d %d * * *", start.Minute(), start.Hour()), Duration: "2h", Description: "nightly"})
	skewed := func() time.Time { return time.Now().Add(12 * time.Hour) }

	_, err := c.Sync(ctx, a, true, argocd.SyncOptions{Timeout: 2 * time.Minute, Now: skewed})
	var se *argocd.SyncError
	if !errors.As(err, &se) || se.Class != argocd.ClassWindow || !strings.Contains(se.Summary, "while the sync was queued") {
		t.Fatalf("Sync() with a skewed clock = %v, want the window class for an operation the controller held", err)
	}
	app := e.ArgoCD.Application(t, a.Name)
	if op, _, _ := unstructured.NestedMap(app.Object, "operation"); op != nil {
		t.Errorf("after the window failure the Application still requests an operation: %v", op)
	}
	if s := argocd.StatusOf(app); s.OperationRunning {
		t.Errorf("after the window failure an operation is still in progress: %+v", s.LastOperation)
	}
	if op := argocd.StatusOf(app).LastOperation; op == nil || op.RequestID != se.RequestID || op.Message != "Operation terminated" {
		t.Errorf("last operation after the window failure = %+v, want ferry's own (%s) terminated", op, se.RequestID)
	}
	if !strings.Contains(se.Advice, "Nothing is left queued") {
		t.Errorf("advice = %q, want it to say nothing is left queued", se.Advice)
	}
}

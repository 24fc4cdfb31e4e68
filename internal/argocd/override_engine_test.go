package argocd_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ferry-dev/terraform-provider-ferry/internal/argocd"
	"github.com/ferry-dev/terraform-provider-ferry/internal/testenv"
	"github.com/ferry-dev/terraform-provider-ferry/internal/window"
)

// alwaysClosed is a deny window that is always active.
var alwaysClosed = window.Spec{Kind: "deny", Schedule: "* * * * *", Duration: "1h", Description: "freeze"}

// slowRollout is a Deployment that becomes ready 8 s after its Pod starts, followed by a ConfigMap
// in the next sync wave: an operation that runs for at least 8 s.
func slowRollout() map[string]string {
	return map[string]string{
		"deploy.yaml": testenv.PinnedDeployment("api", "registry.example.com/api:1", "readinessProbe: {httpGet: {path: /ready, port: 8080}, initialDelaySeconds: 8}"),
		"later.yaml":  laterWave,
	}
}

// running reports whether the operation with request id rid is Running.
func running(rid string) func(app *unstructured.Unstructured) bool {
	return func(app *unstructured.Unstructured) bool {
		s := argocd.StatusOf(app)
		return s.LastOperation != nil && s.LastOperation.RequestID == rid && s.LastOperation.Phase == "Running"
	}
}

// ended reports whether the operation with request id rid has ended.
func ended(rid string) func(app *unstructured.Unstructured) bool {
	return func(app *unstructured.Unstructured) bool {
		s := argocd.StatusOf(app)
		return s.LastOperation != nil && s.LastOperation.RequestID == rid && !s.OperationRunning
	}
}

// TestOverrideMoveBackWhileRunning records why an override keeps the Application in the override
// project until its operation ended: Argo CD's controller checks the project's sync windows at
// every step of a running operation, so an operation whose Application is moved back into a
// project with a closed deny window while it runs is not aborted but held — Running, "Sync
// operation blocked by sync window", its later wave never applied — until the window opens.
func TestOverrideMoveBackWhileRunning(t *testing.T) {
	e, c, a := setup(t, "ov-moveback", slowRollout())
	ctx := context.Background()
	closeWindow(t, e, c, a.Name, alwaysClosed)
	moved, err := c.EnterOverride(ctx, a, argocd.SyncOptions{OverrideReason: "INC-2"})
	if err != nil {
		t.Fatal(err)
	}
	rid, err := c.RequestOverrideSync(ctx, moved, "INC-2")
	if err != nil {
		t.Fatal(err)
	}
	e.ArgoCD.WaitApplication(t, a.Name, running(rid), time.Minute)
	apps := e.Cluster.Dynamic(t).Resource(argocd.ApplicationGVR).Namespace(e.ArgoCD.Namespace)
	if _, err := apps.Patch(ctx, a.Name, types.MergePatchType, []byte(`{"spec":{"project":"`+a.Project+`"}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	// The rollout needs 8 s; 25 s later the operation still runs, held by the window.
	e.ArgoCD.WaitApplication(t, a.Name, func(app *unstructured.Unstructured) bool {
		return argocd.StatusOf(app).LastOperation.Message == "Sync operation blocked by sync window"
	}, time.Minute)
	time.Sleep(25 * time.Second)
	app := e.ArgoCD.Application(t, a.Name)
	s := argocd.StatusOf(app)
	t.Logf("25 s after the move back: %s %q", s.LastOperation.Phase, s.LastOperation.Message)
	if s.LastOperation.RequestID != rid || s.LastOperation.Phase != "Running" || s.LastOperation.Message != "Sync operation blocked by sync window" {
		t.Errorf("operation after the move back = %+v, want ferry's still Running, held by the window", s.LastOperation)
	}
	if _, err := c.Terminate(ctx, a.Name); err != nil {
		t.Error(err)
	}
	e.ArgoCD.WaitApplication(t, a.Name, ended(rid), time.Minute)
}

// TestOverrideMovesBack: with wait = false and with wait = true an override deploys through an
// always-closed deny window, and the Application is back in its own project — with the override
// project deleted — when Sync returns: with wait = false, Sync follows ferry's operation to its end
// (Succeeded, at the digest), not to health.
func TestOverrideMovesBack(t *testing.T) {
	for _, wait := range []bool{false, true} {
		name := "ov-nowait"
		if wait {
			name = "ov-wait"
		}
		t.Run(name, func(t *testing.T) {
			e, c, a := setup(t, name, slowRollout())
			ctx := context.Background()
			closeWindow(t, e, c, a.Name, alwaysClosed)
			var lines []string
			res, err := c.Sync(ctx, a, wait, argocd.SyncOptions{Timeout: 2 * time.Minute, WindowPolicy: argocd.WindowOverride, OverrideReason: "INC-3",
				OnProgress: func(s string) { lines = append(lines, s) }})
			if err != nil {
				t.Fatalf("override Sync(wait=%v) = %v", wait, err)
			}
			t.Logf("progress: %q", lines)
			if res.LastOperation.Phase != "Succeeded" || res.LastOperation.RequestID == "" {
				t.Errorf("result = %+v, want ferry's operation Succeeded", res)
			}
			app := e.ArgoCD.Application(t, a.Name)
			s := argocd.StatusOf(app)
			if s.Project != a.Project {
				t.Errorf("project after the override = %q, want %q (no standing bypass)", s.Project, a.Project)
			}
			if s.LastOperation == nil || s.LastOperation.RequestID != res.LastOperation.RequestID || s.LastOperation.Phase != "Succeeded" {
				t.Errorf("last operation = %+v, want ferry's Succeeded", s.LastOperation)
			}
			if rev, _, _ := unstructured.NestedString(app.Object, "status", "operationState", "syncResult", "revision"); rev != a.Digest {
				t.Errorf("operation revision = %q, want %s", rev, a.Digest)
			}
			if s.OverrideReason != "INC-3" {
				t.Errorf("override reason on the Application = %q", s.OverrideReason)
			}
			if _, err := c.GetProject(ctx, argocd.OverrideProjectName(a.Project)); !errors.Is(err, argocd.ErrNotFound) {
				t.Errorf("override project after the override: %v, want it deleted", err)
			}
		})
	}
}

// TestOverrideRepair simulates a process killed during an override: the Application was moved into
// the override project and ferry's operation requested, then nobody moved it back. While that
// override operation runs, repair leaves it alone; once it ended, RepairOverride moves the
// Application back, says so and deletes the override project. A leftover found by the next Sync
// (here a plain one, failing on the closed window) is repaired the same way, with a warning.
func TestOverrideRepair(t *testing.T) {
	e, c, a := setup(t, "ov-repair", slowRollout())
	ctx := context.Background()
	closeWindow(t, e, c, a.Name, alwaysClosed)
	moved, err := c.EnterOverride(ctx, a, argocd.SyncOptions{OverrideReason: "INC-4"})
	if err != nil {
		t.Fatal(err)
	}
	rid, err := c.RequestOverrideSync(ctx, moved, "INC-4")
	if err != nil {
		t.Fatal(err)
	}
	e.ArgoCD.WaitApplication(t, a.Name, running(rid), time.Minute)
	if msg, err := c.RepairOverride(ctx, a.Name); err != nil || msg != "" {
		t.Errorf("RepairOverride() while the override runs = %q, %v; want nothing repaired", msg, err)
	}
	if p := argocd.StatusOf(e.ArgoCD.Application(t, a.Name)).Project; p != moved.Project {
		t.Errorf("project while the override runs = %q, want %q", p, moved.Project)
	}
	app := e.ArgoCD.WaitApplication(t, a.Name, ended(rid), 2*time.Minute)
	if s := argocd.StatusOf(app); s.LastOperation.Phase != "Succeeded" {
		t.Fatalf("the override operation ended %+v", s.LastOperation)
	}
	msg, err := c.RepairOverride(ctx, a.Name)
	if err != nil || !strings.Contains(msg, "interrupted override") || !strings.Contains(msg, "moved it back to project "+a.Project) {
		t.Errorf("RepairOverride() = %q, %v; want it to say it moved the application back", msg, err)
	}
	if p := argocd.StatusOf(e.ArgoCD.Application(t, a.Name)).Project; p != a.Project {
		t.Errorf("project after the repair = %q, want %q", p, a.Project)
	}
	if _, err := c.GetProject(ctx, argocd.OverrideProjectName(a.Project)); !errors.Is(err, argocd.ErrNotFound) {
		t.Errorf("override project after the repair: %v, want it deleted", err)
	}

	// A leftover without an operation, found by the next (plain) Sync.
	if _, err := c.EnterOverride(ctx, a, argocd.SyncOptions{OverrideReason: "INC-5"}); err != nil {
		t.Fatal(err)
	}
	var lines []string
	_, err = c.Sync(ctx, a, true, argocd.SyncOptions{Timeout: time.Minute, OnProgress: func(s string) { lines = append(lines, s) }})
	var se *argocd.SyncError
	if !errors.As(err, &se) || se.Class != argocd.ClassWindow {
		t.Errorf("plain Sync() through a closed window = %v, want the window class", err)
	}
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "warning: ") || !strings.Contains(lines[0], "moved it back") {
		t.Errorf("progress = %q, want a warning saying what was repaired", lines)
	}
	if p := argocd.StatusOf(e.ArgoCD.Application(t, a.Name)).Project; p != a.Project {
		t.Errorf("project after the Sync = %q, want %q", p, a.Project)
	}
}

// TestDestroyEnvironmentDeletesOverrideProject: an environment whose override project exists
// (an override interrupted before its clean-up) is refused while an Application is in either
// project and, once the Application is gone, deleted with its override project.
func TestDestroyEnvironmentDeletesOverrideProject(t *testing.T) {
	_, c, a := setup(t, "ov-destroy", map[string]string{"cm.yaml": cm("a", "1")})
	ctx := context.Background()
	if _, err := c.EnterOverride(ctx, a, argocd.SyncOptions{OverrideReason: "INC-6"}); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteEnvironment(ctx, a.Project); !errors.Is(err, argocd.ErrInUse) || !strings.Contains(err.Error(), a.Name) {
		t.Errorf("DeleteEnvironment() with the application in the override project = %v, want ErrInUse naming it", err)
	}
	if err := c.DeleteApplication(ctx, a.Name, true); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteEnvironment(ctx, a.Project); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{a.Project, argocd.OverrideProjectName(a.Project)} {
		if _, err := c.GetProject(ctx, p); !errors.Is(err, argocd.ErrNotFound) {
			t.Errorf("project %s after DeleteEnvironment: %v, want it deleted", p, err)
		}
	}
}

// TestOverrideAuditRecord: an override records the reason, the caller (here the Terraform run
// id) and the window overridden in the operation info, on the Application as the
// ferry.dev/last-override annotation and as a FerryWindowOverride Event; the annotation survives
// two further plain syncs (each a server-side apply of the Application under ferry's own field
// manager), once the window is open again.
func TestOverrideAuditRecord(t *testing.T) {
	e, c, a := setup(t, "ov-audit", map[string]string{"cm.yaml": cm("a", "1")})
	ctx := context.Background()
	closeWindow(t, e, c, a.Name, alwaysClosed)
	res, err := c.Sync(ctx, a, false, argocd.SyncOptions{Timeout: 2 * time.Minute, WindowPolicy: argocd.WindowOverride, OverrideReason: "INC-7 hotfix", RunID: "run-audit-1"})
	if err != nil {
		t.Fatal(err)
	}
	rid := res.LastOperation.RequestID
	app := e.ArgoCD.Application(t, a.Name)
	infos, _, _ := unstructured.NestedSlice(app.Object, "status", "operationState", "operation", "info")
	info := map[string]string{}
	for _, i := range infos {
		m := i.(map[string]any)
		info[m["name"].(string)], _ = m["value"].(string)
	}
	t.Logf("operation info: %v", info)
	if info[argocd.InfoRequestID] != rid || info[argocd.InfoOverrideReason] != "INC-7 hotfix" || info[argocd.InfoOverrideBy] != "tfc-run:run-audit-1" ||
		!strings.Contains(info[argocd.InfoOverrideWindow], `("freeze")`) || info[argocd.InfoRunID] != "run-audit-1" {
		t.Errorf("operation info = %v, want request, reason, by tfc-run:run-audit-1 and the freeze window", info)
	}

	// The window opens; two plain syncs apply the Application again.
	if err := c.ApplyEnvironment(ctx, environment(e, a.Name)); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if _, err := c.Sync(ctx, a, true, argocd.SyncOptions{Timeout: 2 * time.Minute}); err != nil {
			t.Fatalf("plain sync %d after the override: %v", i+1, err)
		}
	}
	app = e.ArgoCD.Application(t, a.Name)
	if op := argocd.StatusOf(app).LastOperation; op == nil || op.RequestID == rid {
		t.Errorf("last operation = %+v, want a plain sync after the override", op)
	}
	rec := argocd.LastOverrideOf(app)
	t.Logf("%s: %s", argocd.AnnotationLastOverride, app.GetAnnotations()[argocd.AnnotationLastOverride])
	if rec == nil || rec.Reason != "INC-7 hotfix" || rec.By != "tfc-run:run-audit-1" || rec.Revision != a.Digest || rec.RequestID != rid ||
		!strings.Contains(rec.Window, `("freeze")`) || rec.At == "" {
		t.Errorf("audit record after two plain syncs = %+v, want the override's", rec)
	}
	if got, err := c.LastOverride(ctx, a.Name); err != nil || got == nil || *got != *rec {
		t.Errorf("LastOverride = %+v, %v", got, err)
	}

	events, err := e.Cluster.Dynamic(t).Resource(argocd.EventGVR).Namespace(e.ArgoCD.Namespace).List(ctx, metav1.ListOptions{
		FieldSelector: "involvedObject.name=" + a.Name + ",reason=" + argocd.EventReasonOverride})
	if err != nil {
		t.Fatal(err)
	}
	if len(events.Items) != 1 {
		t.Fatalf("%d %s Events on the Application, want 1", len(events.Items), argocd.EventReasonOverride)
	}
	ev := events.Items[0]
	msg, _, _ := unstructured.NestedString(ev.Object, "message")
	kind, _, _ := unstructured.NestedString(ev.Object, "involvedObject", "kind")
	uid, _, _ := unstructured.NestedString(ev.Object, "involvedObject", "uid")
	t.Logf("event: %s", msg)
	if kind != "Application" || uid != string(app.GetUID()) || !strings.Contains(msg, "INC-7 hotfix") || !strings.Contains(msg, "tfc-run:run-audit-1") ||
		!strings.Contains(msg, rid) || !strings.Contains(msg, `("freeze")`) {
		t.Errorf("event = %s on %s %s, want the override on the Application", msg, kind, uid)
	}
}

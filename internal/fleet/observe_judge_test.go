package fleet

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// The rules of judge on Application objects shaped as Argo CD writes them (the integration test
// TestCLIFleetStatus, cmd/ferry, produces each state with the real controller).

const (
	dOld = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	dNew = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
	repo = "oci://registry.example.com/shop/bundle"
)

func project(windows ...map[string]any) *unstructured.Unstructured {
	p := &unstructured.Unstructured{Object: map[string]any{"metadata": map[string]any{"name": "acme", "labels": map[string]any{"tier": "canary"}}}}
	var ws []any
	for _, w := range windows {
		ws = append(ws, w)
	}
	p.Object["spec"] = map[string]any{"syncWindows": ws}
	return p
}

// application returns an Application targeting target, whose status Argo CD computed for
// comparedTo and found sync at revision, with health, and an operation record op (nil for none).
func application(target, comparedTo, revision, sync, health string, op map[string]any) *unstructured.Unstructured {
	a := &unstructured.Unstructured{Object: map[string]any{
		"metadata": map[string]any{"name": "shop-acme"},
		"spec":     map[string]any{"project": "acme", "source": map[string]any{"repoURL": repo, "targetRevision": target, "path": "."}},
		"status": map[string]any{
			"reconciledAt": "2026-12-05T10:00:05Z",
			"sync": map[string]any{"status": sync, "revision": revision,
				"comparedTo": map[string]any{"source": map[string]any{"repoURL": repo, "targetRevision": comparedTo, "path": "."}}},
			"health": map[string]any{"status": health},
		},
	}}
	if op != nil {
		a.Object["status"].(map[string]any)["operationState"] = op
	}
	return a
}

func succeeded(rev string) map[string]any {
	return map[string]any{"phase": "Succeeded", "message": "successfully synced (all tasks run)", "startedAt": "2026-12-05T10:00:00Z", "finishedAt": "2026-12-05T10:00:01Z",
		"operation": map[string]any{"sync": map[string]any{"revision": rev}}, "syncResult": map[string]any{"revision": rev}}
}

func TestJudge(t *testing.T) {
	now := time.Date(2026, 12, 5, 10, 0, 10, 0, time.UTC)
	failed := map[string]any{"phase": "Error", "message": "rpc error: code = Unavailable desc = connection refused", "startedAt": "2026-12-05T10:00:00Z", "finishedAt": "2026-12-05T10:00:01Z",
		"operation": map[string]any{"sync": map[string]any{"revision": dNew}}}
	running := map[string]any{"phase": "Running", "message": "waiting for healthy state", "startedAt": "2026-12-05T10:00:00Z",
		"operation": map[string]any{"sync": map[string]any{"revision": dNew}}}
	held := map[string]any{"phase": "Running", "message": "Sync operation blocked by sync window", "startedAt": "2026-12-05T10:00:00Z",
		"operation": map[string]any{"sync": map[string]any{"revision": dNew}}}
	unreconciled := succeeded(dNew)
	unreconciled["finishedAt"] = "2026-12-05T10:00:09Z" // after reconciledAt
	closed := map[string]any{"kind": "deny", "schedule": "* * * * *", "duration": "1h", "applications": []any{"*"}}
	tests := []struct {
		name     string
		app      *unstructured.Unstructured
		windows  []map[string]any
		digest   string
		state    State
		sync     string
		failure  string
		override bool
	}{
		{"done", application(dNew, dNew, dNew, "Synced", "Healthy", succeeded(dNew)), nil, dNew, StateDone, "Synced", "", false},
		{"own target done", application(dNew, dNew, dNew, "Synced", "Healthy", succeeded(dNew)), nil, "", StateDone, "Synced", "", false},
		{"old revision", application(dOld, dOld, dOld, "Synced", "Healthy", succeeded(dOld)), nil, dNew, StateOutOfDate, "OutOfSync", "", false},
		{"old revision, window closed", application(dOld, dOld, dOld, "Synced", "Healthy", succeeded(dOld)), []map[string]any{closed}, dNew, StateWindowClosed, "OutOfSync", "", false},
		// targetRevision just changed: Argo CD's status is still the comparison of the old one.
		{"stale synced", application(dNew, dOld, dOld, "Synced", "Healthy", succeeded(dOld)), nil, dNew, StateInProgress, "OutOfSync", "", false},
		{"stale synced, own target", application(dNew, dOld, dOld, "Synced", "Healthy", succeeded(dOld)), nil, "", StateInProgress, "OutOfSync", "", false},
		{"stale synced, old digest asked", application(dNew, dOld, dOld, "Synced", "Healthy", succeeded(dOld)), nil, dOld, StateOutOfDate, "OutOfSync", "", false},
		{"not reconciled since the sync", application(dNew, dNew, dNew, "Synced", "Healthy", unreconciled), nil, dNew, StateInProgress, "Synced", "", false},
		{"running", application(dNew, dNew, dOld, "OutOfSync", "Healthy", running), nil, dNew, StateInProgress, "OutOfSync", "", false},
		{"held by the window", application(dNew, dNew, dOld, "OutOfSync", "Healthy", held), []map[string]any{closed}, dNew, StateWindowClosed, "OutOfSync", "", false},
		{"failed", application(dNew, dNew, dOld, "OutOfSync", "Healthy", failed), nil, dNew, StateFailed, "OutOfSync", "transient", false},
		{"failed for another digest", application(dNew, dNew, dOld, "OutOfSync", "Healthy", failed), nil, dOld, StateOutOfDate, "OutOfSync", "transient", false},
		{"progressing", application(dNew, dNew, dNew, "Synced", "Progressing", succeeded(dNew)), nil, dNew, StateInProgress, "Synced", "", false},
		{"degraded", application(dNew, dNew, dNew, "Synced", "Degraded", succeeded(dNew)), nil, dNew, StateUnhealthy, "Synced", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := judge(project(tt.windows...), tt.app, "", tt.digest, now)
			if l.State != tt.state || l.SyncStatus != tt.sync || l.FailureClass != tt.failure || l.Done != (tt.state == StateDone) {
				t.Errorf("judge() = state %s, sync %s, failure %q, done %v; want %s, %s, %q", l.State, l.SyncStatus, l.FailureClass, l.Done, tt.state, tt.sync, tt.failure)
			}
		})
	}
	t.Run("repository", func(t *testing.T) {
		a := application(dNew, dNew, dNew, "Synced", "Healthy", succeeded(dNew))
		if l := judge(project(), a, "oci://registry.example.com/other", dNew, now); l.Done || l.SyncStatus == "Synced" {
			t.Errorf("judge() of another repository's Application = %+v, want not done, not Synced", l)
		}
		if l := judge(project(), a, repo, dNew, now); !l.Done {
			t.Errorf("judge() of the bundle's repository = %+v, want done", l)
		}
	})
	t.Run("override", func(t *testing.T) {
		a := application(dNew, dNew, dOld, "OutOfSync", "Healthy", running)
		unstructured.SetNestedField(a.Object, "acme.ferry-override", "spec", "project")
		l := judge(project(closed), a, "", dNew, now)
		if !l.Override || l.Project != "acme.ferry-override" || l.WindowOpen || l.State != StateInProgress {
			t.Errorf("judge() of an overridden Application = %+v, want override, its environment's window (closed), in progress", l)
		}
	})
	t.Run("missing", func(t *testing.T) {
		l := judge(project(), nil, "", dNew, now)
		if l.Found || l.State != StateMissing || !l.WindowOpen || l.Labels["tier"] != "canary" {
			t.Errorf("judge() without an Application = %+v, want missing, window open, the labels", l)
		}
	})
}

func TestCountsString(t *testing.T) {
	ls := []Live{{State: StateDone}, {State: StateDone}, {State: StateOutOfDate}, {State: StateFailed, FailureClass: "transient"},
		{State: StateWindowClosed}, {State: StateMissing}}
	if got, want := Count(ls).String(), "2 done, 1 failed (transient), 1 out of date, 1 window closed, 1 missing"; got != want {
		t.Errorf("Count().String() = %q, want %q", got, want)
	}
	ls = append(ls, Live{State: StateFailed, FailureClass: "permanent"})
	if got, want := Count(ls).String(), "2 done, 2 failed (1 permanent, 1 transient), 1 out of date, 1 window closed, 1 missing"; got != want {
		t.Errorf("Count().String() = %q, want %q", got, want)
	}
	if got := Count(nil).String(); got != "no environments" {
		t.Errorf("Count(nil).String() = %q", got)
	}
}

// BenchmarkJudge is the work fleet status does per Application once the lists are read: the
// window evaluated from the project, the last failure classified, the state decided.
func BenchmarkJudge(b *testing.B) {
	p := project(
		map[string]any{"kind": "allow", "schedule": "0 2 * * 1-5", "duration": "4h", "timeZone": "Europe/Berlin", "applications": []any{"*"}},
		map[string]any{"kind": "deny", "schedule": "0 0 24 12 *", "duration": "48h", "timeZone": "Europe/Berlin", "applications": []any{"*"}},
	)
	a := application(dNew, dNew, dNew, "Synced", "Healthy", succeeded(dNew))
	now := time.Date(2026, 12, 5, 10, 0, 10, 0, time.UTC)
	for b.Loop() {
		judge(p, a, "", dNew, now)
	}
}

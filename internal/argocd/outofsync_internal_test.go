package argocd

import (
	"context"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestOutOfSyncSettle: an application OutOfSync right after its sync is not failed, and no refresh
// is asked for, until it has been seen so for outOfSyncSettle (the controller's cluster cache may
// not have the applied objects yet, even for a comparison ferry asked for); then one processed
// refresh that still finds it OutOfSync fails it as permanent.
func TestOutOfSyncSettle(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 11, 27, 3, 20, 33, 0, time.UTC)
	app := func(version string, reconciled time.Time) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{
			"metadata": map[string]any{"name": "shop", "resourceVersion": version},
			"status": map[string]any{
				"reconciledAt": reconciled.Format(time.RFC3339),
				"sync":         map[string]any{"status": "OutOfSync"},
				"resources":    []any{map[string]any{"kind": "ConfigMap", "namespace": "shop", "name": "a", "status": "OutOfSync"}},
			},
		}}
	}
	var refreshed []time.Time
	now := t0
	w := outOfSyncWatch{refresh: func(_ context.Context, name string) (*unstructured.Unstructured, error) {
		refreshed = append(refreshed, now)
		return app("100", now), nil
	}}
	// Comparisons every second right after the sync, each reconciled anew: still settling.
	for ; now.Sub(t0) < outOfSyncSettle; now = now.Add(time.Second) {
		if err := w.failure(ctx, app("50", now), now, now, "r-1"); err != nil {
			t.Fatalf("failed %s after the sync, before outOfSyncSettle (%s): %v", now.Sub(t0), outOfSyncSettle, err)
		}
	}
	if len(refreshed) != 0 {
		t.Fatalf("asked for a refresh at %v, before outOfSyncSettle", refreshed)
	}
	// Settled: ferry asks for one refresh and waits for it.
	if err := w.failure(ctx, app("60", now), now, now, "r-1"); err != nil || len(refreshed) != 1 {
		t.Fatalf("at outOfSyncSettle: error %v, refreshes %v; want nil and one refresh", err, refreshed)
	}
	// The refresh processed, still OutOfSync: permanent.
	later := now.Add(2 * time.Second)
	err := w.failure(ctx, app("120", later), later, later, "r-1")
	if err == nil || err.Class != ClassPermanent || !strings.HasPrefix(err.Summary, "Sync incomplete: still OutOfSync after the sync") {
		t.Fatalf("after the processed refresh: %v, want permanent still OutOfSync", err)
	}
}

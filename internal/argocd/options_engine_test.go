package argocd_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-dev/terraform-provider-ferry/internal/argocd"
)

// progressLog collects a sync's progress lines.
type progressLog struct {
	mu    sync.Mutex
	lines []string
}

func (p *progressLog) add(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lines = append(p.lines, s)
}

// with returns the lines that start with prefix.
func (p *progressLog) with(prefix string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, l := range p.lines {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return out
}

// TestTransientRetryOptions: TransientRetries bounds ferry's retries of a transient failure (the
// environment's cluster Secret points at a closed port) and RetryBackoff is the first wait,
// doubled each time: 2 retries after 1s and 2s; -1 retries none.
func TestTransientRetryOptions(t *testing.T) {
	tests := []struct {
		name    string
		retries int
		want    []string // the waits of the retries
	}{
		{"two retries", 2, []string{"retrying in 1s (attempt 1 of 2)", "retrying in 2s (attempt 2 of 2)"}},
		{"none", -1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, c, a := setup(t, "opt-retries-"+strings.ReplaceAll(tt.name, " ", "-"), map[string]string{"cm.yaml": cm("a", "1")})
			a = unreachableCluster(t, e, c, a)
			var log progressLog
			_, err := c.Sync(context.Background(), a, true, argocd.SyncOptions{Timeout: 2 * time.Minute, TransientRetries: tt.retries, RetryBackoff: time.Second, OnProgress: log.add})
			syncErr(t, err, argocd.ClassTransient)
			got := log.with("transient failure")
			if len(got) != len(tt.want) {
				t.Fatalf("Sync(TransientRetries %d) retried %d times: %q, want %d", tt.retries, len(got), got, len(tt.want))
			}
			for i, w := range tt.want {
				if !strings.HasSuffix(got[i], w) {
					t.Errorf("retry %d: %q, want it to end %q", i+1, got[i], w)
				}
			}
		})
	}
}

// TestConflictWaitOption: with ConflictWait a sync waits that long for another running operation
// (here ferry's own, waiting for a Deployment that never becomes ready) before failing as a
// conflict; without it, it fails at once.
func TestConflictWaitOption(t *testing.T) {
	t.Parallel()
	_, c, a := setup(t, "opt-conflict-wait", map[string]string{"deploy.yaml": neverReady, "later.yaml": laterWave})
	ctx := context.Background()
	if _, err := c.Sync(ctx, a, false, argocd.SyncOptions{Timeout: time.Minute}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Terminate(context.Background(), a.Name) })
	for _, wait := range []time.Duration{0, 6 * time.Second} {
		var log progressLog
		start := time.Now()
		_, err := c.Sync(ctx, a, true, argocd.SyncOptions{Timeout: time.Minute, ConflictWait: wait, OnProgress: log.add})
		took := time.Since(start)
		syncErr(t, err, argocd.ClassConflict)
		waited := log.with("another operation")
		switch {
		case wait == 0 && (len(waited) != 0 || took > 5*time.Second):
			t.Errorf("Sync(ConflictWait 0) took %s, progress %q; want the conflict at once", took.Round(time.Millisecond), waited)
		case wait > 0 && (len(waited) == 0 || !strings.Contains(waited[0], "waiting up to 6s") || took < wait):
			t.Errorf("Sync(ConflictWait %s) took %s, progress %q; want it to wait that long first", wait, took.Round(time.Millisecond), waited)
		}
	}
}

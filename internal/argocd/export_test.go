package argocd

import (
	"context"
	"time"
)

// EnterOverride is the first step of an override (the override project written, the application
// moved into it) and RequestOverrideSync its second (ferry's operation requested with the
// reason), for tests that simulate a process killed before it moved the application back.
func (c *Client) EnterOverride(ctx context.Context, a App, opts SyncOptions) (App, error) {
	opts.defaults()
	return c.enterOverride(ctx, a, opts)
}

func (c *Client) RequestOverrideSync(ctx context.Context, moved App, reason string) (string, error) {
	opts := SyncOptions{}
	opts.defaults()
	rid := newRequestID()
	return rid, c.requestSync(ctx, moved, rid, opts, reason)
}

// SetNow replaces the BatchReader's clock.
func (b *BatchReader) SetNow(now func() time.Time) { b.now = now }

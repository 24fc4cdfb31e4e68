package option

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"testing"

	"github.com/ferry-dev/terraform-provider-ferry/bundle"
)

// TestInterruptedExitCode: a cancelled command context exits 130 (SIGINT) or 143 (SIGTERM) with a
// short message, however the error that the cancellation caused is wrapped or classified.
func TestInterruptedExitCode(t *testing.T) {
	unreachable := fmt.Errorf("inspect x: %w: Get \"http://x/v2/\": %w", bundle.ErrUnreachable, context.Canceled)
	tests := []struct {
		err  error
		code int
		msg  string
	}{
		{context.Canceled, 130, "Error: interrupted by SIGINT (Ctrl-C)"},
		{unreachable, 130, "Error: interrupted by SIGINT (Ctrl-C)"},
		{&Error{Err: unreachable, Code: ExitTransient, Recommendation: "Check the network."}, 130, "Error: interrupted by SIGINT (Ctrl-C)"},
		{errors.Join(errors.New("push blob"), fmt.Errorf("tag: %w", context.Canceled)), 130, "Error: interrupted by SIGINT (Ctrl-C)"},
		{&Interrupted{Signal: syscall.SIGINT}, 130, "Error: interrupted by SIGINT (Ctrl-C)"},
		{fmt.Errorf("read: %w", &Interrupted{Signal: syscall.SIGTERM}), 143, "Error: interrupted by SIGTERM"},
		{Usagef("ferry x", "", errors.New("bad")), ExitUsage, "Error: bad\nUsage: ferry x"},
	}
	for _, tt := range tests {
		if got := ExitCode(tt.err); got != tt.code {
			t.Errorf("ExitCode(%v) = %d, want %d", tt.err, got, tt.code)
		}
		if got := FormatError(tt.err); got != tt.msg {
			t.Errorf("FormatError(%v) = %q, want %q", tt.err, got, tt.msg)
		}
	}
	if ExitInterrupted != 130 || ExitUsage != 2 {
		t.Errorf("ExitInterrupted, ExitUsage = %d, %d; docs/cli.md says 130, 2", ExitInterrupted, ExitUsage)
	}
}

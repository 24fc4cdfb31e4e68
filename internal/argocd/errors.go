package argocd

import (
	"fmt"
	"strings"
	"time"
)

// Class is the class of a sync outcome, as in docs/sync.md and Argo CD's failure table.
type Class string

// Sync outcome classes.
const (
	ClassSuccess   Class = "success"
	ClassConflict  Class = "conflict"  // another operation is running; never overwritten
	ClassTransient Class = "transient" // retried by ferry with bounded backoff; returned when retries ran out
	ClassPermanent Class = "permanent" // retrying cannot help: fail fast
	ClassWindow    Class = "window"    // a deployment window blocks the sync
	ClassApproval  Class = "approval"  // Argo CD waits for a pruning confirmation
	ClassStuck     Class = "stuck"     // no progress past the threshold; ferry terminated its own operation
	ClassTimeout   Class = "timeout"   // the overall timeout ran out
)

// Resource is a resource named in an outcome.
type Resource struct {
	Group     string `json:"group,omitempty"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	Status    string `json:"status,omitempty"`
	Message   string `json:"message,omitempty"`
}

// String returns group/Kind ns/name.
func (r Resource) String() string {
	kind := r.Kind
	if r.Group != "" {
		kind = r.Group + "/" + r.Kind
	}
	if r.Namespace != "" {
		return kind + " " + r.Namespace + "/" + r.Name
	}
	return kind + " " + r.Name
}

// SyncError is a failed sync: its class, a one-line summary that names the class, the last
// operation message, the failing resources and what to do.
type SyncError struct {
	Class       Class
	Summary     string
	LastMessage string
	Resources   []Resource
	Advice      string
	// NextOpen is set for ClassWindow when the window opens within the search horizon.
	NextOpen *time.Time
	// RequestID is ferry's request id, when an operation was written.
	RequestID string

	// cause is the API error that ended a wait (lostCluster), for callers that look for the
	// connection failure underneath (a *kube.UnreachableError).
	cause error
	// final marks an outcome a new sync request cannot improve on: ferry lost sight of an
	// operation that may still run, and a new request would conflict with it.
	final bool
}

// Unwrap returns the API error that ended the wait, if any.
func (e *SyncError) Unwrap() error { return e.cause }

func (e *SyncError) Error() string {
	var b strings.Builder
	b.WriteString(e.Summary)
	if e.LastMessage != "" && !strings.Contains(e.Summary, e.LastMessage) {
		b.WriteString(": " + e.LastMessage)
	}
	return b.String()
}

// Detail returns a multi-line explanation: the resources and what to do.
func (e *SyncError) Detail() string {
	var b strings.Builder
	if e.LastMessage != "" {
		fmt.Fprintf(&b, "Last operation message: %s\n", e.LastMessage)
	}
	if len(e.Resources) > 0 {
		b.WriteString("Resources:\n")
		for _, r := range e.Resources {
			line := "  - " + r.String()
			if r.Status != "" {
				line += " (" + r.Status + ")"
			}
			if r.Message != "" {
				line += ": " + r.Message
			}
			b.WriteString(line + "\n")
		}
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, "Request id: %s\n", e.RequestID)
	}
	if e.Advice != "" {
		b.WriteString("\n" + e.Advice)
	}
	return strings.TrimRight(b.String(), "\n")
}

package argocd

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
)

// Reading failures out of an Application: classes, failing resources, still OutOfSync.

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// invalidSpec returns the message of an InvalidSpecError or UnknownError condition.
func invalidSpec(app *unstructured.Unstructured) string {
	conds, _, _ := unstructured.NestedSlice(app.Object, "status", "conditions")
	for _, c := range conds {
		if m, ok := c.(map[string]any); ok && (m["type"] == "InvalidSpecError") {
			return fmt.Sprint(m["message"])
		}
	}
	return ""
}

// classifyMessage decides transient or permanent for a failed operation.
func classifyMessage(msg string, app *unstructured.Unstructured) Class {
	if strings.Contains(msg, controllerSyncTimeout) {
		return ClassStuck
	}
	permanent := []string{"authentication required", "401", "403", "repository not found", "app path does not exist",
		"not permitted in project", "synchronization tasks are not valid", "failed to apply", "Shared resource found", "is invalid", "field is immutable", "forbidden", "expected only a single oci content layer"}
	for _, p := range permanent {
		if strings.Contains(msg, p) {
			return ClassPermanent
		}
	}
	for _, t := range transientMarkers {
		if strings.Contains(msg, t) {
			return ClassTransient
		}
	}
	return ClassPermanent
}

// approvalError is the approval class for a running operation with message msg, or nil when the
// operation is not waiting for a confirmation.
func approvalError(namespace, app, msg, rid string, now time.Time) *SyncError {
	if !strings.HasPrefix(msg, pruneConfirmationPrefix) {
		return nil
	}
	return &SyncError{Class: ClassApproval, Summary: "Sync needs approval: Argo CD waits for a pruning confirmation", LastMessage: msg, RequestID: rid,
		Resources: waitingFor(msg, pruneConfirmationPrefix, "RequiresPruningConfirmation"),
		Advice:    fmt.Sprintf("Approve with: kubectl -n %s annotate application %s %s=%s", namespace, app, AnnotationDeletionApproved, now.UTC().Format(time.RFC3339))}
}

// waitingFor returns the resource a Running operation's message names after prefix, in Argo CD's
// "<group>/<kind>/<name>[ and N more resources]" form, with status.
func waitingFor(msg, prefix, status string) []Resource {
	rest, ok := strings.CutPrefix(msg, prefix)
	if !ok {
		return nil
	}
	rest, _, _ = strings.Cut(rest, " and ")
	parts := strings.SplitN(rest, "/", 3)
	if len(parts) != 3 || parts[1] == "" || parts[2] == "" {
		return nil
	}
	return []Resource{{Group: parts[0], Kind: parts[1], Name: parts[2], Status: status}}
}

// failingResources lists the resources of the last sync result that failed, then the unhealthy
// ones Argo CD reports.
func failingResources(app *unstructured.Unstructured) []Resource {
	if app == nil {
		return nil
	}
	var out []Resource
	res, _, _ := unstructured.NestedSlice(app.Object, "status", "operationState", "syncResult", "resources")
	for _, r := range res {
		m, ok := r.(map[string]any)
		if !ok {
			continue
		}
		status, _ := m["status"].(string)
		if status != "SyncFailed" {
			continue
		}
		out = append(out, resourceOf(m, status))
	}
	live, _, _ := unstructured.NestedSlice(app.Object, "status", "resources")
	for _, r := range live {
		m, ok := r.(map[string]any)
		if !ok {
			continue
		}
		h, _ := m["health"].(map[string]any)
		hs, _ := h["status"].(string)
		if hs == "Degraded" || hs == "Missing" || hs == "Progressing" {
			res := resourceOf(m, hs)
			res.Message, _ = h["message"].(string)
			if !slices.ContainsFunc(out, func(o Resource) bool { return o.Kind == res.Kind && o.Name == res.Name && o.Namespace == res.Namespace }) {
				out = append(out, res)
			}
		}
	}
	if len(out) == 0 {
		// Argo CD names the culprit in the health message: "Caused by apps/Deployment:ns/name".
		if msg := str(app.Object, "status", "health", "message"); strings.HasPrefix(msg, "Caused by ") {
			ref := strings.TrimPrefix(msg, "Caused by ")
			ref, _, _ = strings.Cut(ref, ",")
			gk, nsName, _ := strings.Cut(ref, ":")
			group, kind, found := strings.Cut(gk, "/")
			if !found {
				group, kind = "", gk
			}
			ns, name, found := strings.Cut(nsName, "/")
			if !found {
				ns, name = "", nsName
			}
			out = append(out, Resource{Group: group, Kind: kind, Namespace: ns, Name: strings.TrimSpace(name), Status: str(app.Object, "status", "health", "status")})
		}
	}
	return out
}

func resourceOf(m map[string]any, status string) Resource {
	r := Resource{Status: status}
	r.Group, _ = m["group"].(string)
	r.Kind, _ = m["kind"].(string)
	r.Namespace, _ = m["namespace"].(string)
	r.Name, _ = m["name"].(string)
	r.Message, _ = m["message"].(string)
	return r
}

func pruneSkipped(opState map[string]any) int {
	n := 0
	res, _, _ := unstructured.NestedSlice(opState, "syncResult", "resources")
	for _, r := range res {
		if m, ok := r.(map[string]any); ok && m["status"] == "PruneSkipped" {
			n++
		}
	}
	return n
}

// annotationRefresh asks Argo CD to compare an application again; the controller removes it
// when it did.
const annotationRefresh = "argocd.argoproj.io/refresh"

// controllerSyncTimeout ends the message of an operation the controller's --sync-timeout ended
// (docs/sync.md, failure classes).
const controllerSyncTimeout = "triggered by controller sync timeout"

// outOfSyncResources lists the resources Argo CD reports OutOfSync.
func outOfSyncResources(app *unstructured.Unstructured) []Resource {
	var out []Resource
	live, _, _ := unstructured.NestedSlice(app.Object, "status", "resources")
	for _, r := range live {
		if m, ok := r.(map[string]any); ok && m["status"] == "OutOfSync" {
			out = append(out, resourceOf(m, "OutOfSync"))
		}
	}
	return out
}

// outOfSyncSettle is how long an application must have been seen OutOfSync after its operation
// succeeded before ferry asks for the refresh that decides it: the controller compares against its
// cluster cache, which the watch of the applied objects updates a moment after the apply, and a
// comparison made before that (even one ferry asked for) is a stale OutOfSync that the next
// resource event clears. Seen in BenchmarkReactionLatency: a ConfigMap reported OutOfSync by two
// comparisons within a second of the sync that configured it.
const outOfSyncSettle = 10 * time.Second

// outOfSyncWatch decides when an application still OutOfSync at the digest after its operation
// succeeded (and reconciled since, with no resources left for pruning) has failed: once it has
// been seen so for outOfSyncSettle, it asks Argo CD for a refresh, and once the controller has
// processed it — the annotation is gone and reconciledAt moved past its value when ferry asked
// — an application still OutOfSync differs from what the sync applied (docs/sync.md, "still
// OutOfSync"). Events older than the refresh have no annotation either, but not a later reconciledAt.
type outOfSyncWatch struct {
	// refresh asks Argo CD for a refresh (Client.refresh, or a fake in tests).
	refresh  func(ctx context.Context, name string) (*unstructured.Unstructured, error)
	since    time.Time // first seen OutOfSync after the operation
	requests int       // refreshes asked for
	sent     time.Time // when the last was asked for
	version  string    // the Application's resourceVersion the last refresh wrote
	base     time.Time // its reconciledAt then
}

// failure observes app (reconciled at reconciled) and returns the permanent failure, or nil while
// it waits.
func (w *outOfSyncWatch) failure(ctx context.Context, app *unstructured.Unstructured, reconciled, now time.Time, rid string) *SyncError {
	if w.since.IsZero() {
		w.since = now
	}
	if now.Sub(w.since) < outOfSyncSettle {
		return nil
	}
	_, pending := app.GetAnnotations()[annotationRefresh]
	// reconciledAt has a one-second resolution: a refresh processed within the second of the
	// previous comparison leaves it unchanged, so ask again (a few times, a second apart) rather
	// than wait for the periodic resync.
	again := w.requests > 0 && w.requests < 4 && !pending && newerVersion(app.GetResourceVersion(), w.version) &&
		!reconciled.After(w.base) && now.Sub(w.sent) >= time.Second
	if w.requests == 0 || again {
		w.requests++
		w.sent = now
		if patched, err := w.refresh(ctx, app.GetName()); err == nil {
			w.base, _ = time.Parse(time.RFC3339, str(patched.Object, "status", "reconciledAt"))
			w.version = patched.GetResourceVersion()
		}
		return nil
	}
	if pending || w.base.IsZero() || !reconciled.After(w.base) {
		return nil
	}
	resources := outOfSyncResources(app)
	summary := "Sync incomplete: still OutOfSync after the sync"
	if len(resources) > 0 {
		summary += ": " + resources[0].String()
	}
	return &SyncError{Class: ClassPermanent, Summary: summary, LastMessage: str(app.Object, "status", "operationState", "message"), Resources: resources, RequestID: rid,
		Advice: "Argo CD applied the bundle, but the live objects still differ from it: a field the API server drops or rewrites " +
			"(an unknown field pruned by a CRD's schema, a normalized value, a mutating webhook) or another controller changing them. Fix the manifests so they match what the cluster keeps."}
}

// newerVersion reports whether resourceVersion a is later than b (etcd revisions; false when
// either is not a number).
func newerVersion(a, b string) bool {
	x, err1 := strconv.ParseUint(a, 10, 64)
	y, err2 := strconv.ParseUint(b, 10, 64)
	return err1 == nil && err2 == nil && x > y
}

// refresh asks Argo CD for a normal refresh through the annotation.
func (c *Client) refresh(ctx context.Context, name string) (*unstructured.Unstructured, error) {
	patch := `{"metadata":{"annotations":{"` + annotationRefresh + `":"normal"}}}`
	return c.res(ApplicationGVR).Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{FieldManager: FieldManager + "-refresh"})
}

// transientMarkers are network and availability texts that make a failure worth retrying.
var transientMarkers = []string{"Unavailable", "DeadlineExceeded", "context deadline exceeded", "connection refused", "i/o timeout",
	"TLS handshake timeout", "no such host", "connection reset", "Failed to get destination cluster", "failed to load openAPISchema",
	"the server is currently unable to handle the request", "429", "502", "503", "504", "EOF"}

// pruneConfirmationPrefix starts the message of an operation that waits for a Prune=confirm
// resource to be approved.
const pruneConfirmationPrefix = "waiting for pruning confirmation of "

package argocd

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// The durable audit record of an override (docs/sync.md, "Audit record").
const (
	// AnnotationLastOverride on an Application holds the last override as compact JSON (an
	// OverrideRecord). It is written by server-side apply under its own field manager,
	// AuditFieldManager, so ferry's later applies under FieldManager — which never contain it —
	// neither own nor remove it.
	AnnotationLastOverride = "ferry.dev/last-override"
	// AuditFieldManager is the field manager of AnnotationLastOverride.
	AuditFieldManager = "ferry-audit"
	// EventReasonOverride is the reason of the Kubernetes Event ferry records on the Application
	// for each override.
	EventReasonOverride = "FerryWindowOverride"

	// InfoOverrideBy and InfoOverrideWindow are the operation info entries of an override next
	// to InfoOverrideReason: who overrode, and the window that was closed.
	InfoOverrideBy     = "override-by"
	InfoOverrideWindow = "override-window"
)

// EventGVR is core/v1 Events.
var EventGVR = schema.GroupVersionResource{Version: "v1", Resource: "events"}

var selfSubjectReviewGVR = schema.GroupVersionResource{Group: "authentication.k8s.io", Version: "v1", Resource: "selfsubjectreviews"}

// OverrideRecord is the audit record of one override.
type OverrideRecord struct {
	// At is when ferry requested the override operation (RFC 3339, UTC).
	At string `json:"at"`
	// Reason is the override reason.
	Reason string `json:"reason"`
	// By is the caller identity ferry knows, first of: "tfc-run:<TFC_RUN_ID>",
	// "user:<$USER, $LOGNAME or $USERNAME>", "kubernetes:<username of ferry's credentials>";
	// "unknown" when none is.
	By string `json:"by"`
	// Window is the closed window overridden: the window evaluation's sentence naming the
	// deciding window, e.g. `deny window project acme syncWindows[0] ("freeze") is active until …`.
	Window string `json:"window"`
	// Revision is the bundle digest deployed.
	Revision string `json:"revision"`
	// RequestID is ferry's request id of the override operation.
	RequestID string `json:"request,omitempty"`
}

// LastOverrideOf returns the audit record on app, nil when it has none (or it is not valid JSON).
func LastOverrideOf(app *unstructured.Unstructured) *OverrideRecord {
	v := app.GetAnnotations()[AnnotationLastOverride]
	if v == "" {
		return nil
	}
	var r OverrideRecord
	if err := json.Unmarshal([]byte(v), &r); err != nil {
		return nil
	}
	return &r
}

// LastOverride reads the audit record of the last override of the Application name; nil when
// there was none.
func (c *Client) LastOverride(ctx context.Context, name string) (*OverrideRecord, error) {
	app, err := c.get(ctx, ApplicationGVR, name)
	if err != nil {
		return nil, err
	}
	return LastOverrideOf(app), nil
}

// overrideInfo returns the operation info entries of an override beyond its reason.
func (a App) overrideInfo() []any {
	if a.audit == nil {
		return nil
	}
	return []any{
		map[string]any{"name": InfoOverrideBy, "value": a.audit.By},
		map[string]any{"name": InfoOverrideWindow, "value": a.audit.Window},
	}
}

// callerIdentity returns who overrides, as OverrideRecord.By documents: the Terraform run id,
// else the user from the environment, else the Kubernetes identity of ferry's credentials (one
// SelfSubjectReview, skipped when the API server does not offer it).
func (c *Client) callerIdentity(ctx context.Context, runID string) string {
	if runID != "" {
		return "tfc-run:" + runID
	}
	for _, v := range []string{"USER", "LOGNAME", "USERNAME"} {
		if u := strings.TrimSpace(os.Getenv(v)); u != "" {
			return "user:" + u
		}
	}
	review := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if out, err := c.dyn.Resource(selfSubjectReviewGVR).Create(ctx, review, metav1.CreateOptions{}); err == nil {
		if u := str(out.Object, "status", "userInfo", "username"); u != "" {
			return "kubernetes:" + u
		}
	}
	return "unknown"
}

// newOverrideRecord builds the audit record of an override of a, before it moves: the window is
// evaluated in the application's own project now.
func (c *Client) newOverrideRecord(ctx context.Context, a App, opts SyncOptions) *OverrideRecord {
	r := &OverrideRecord{Reason: opts.OverrideReason, By: c.callerIdentity(ctx, opts.RunID), Revision: a.Digest}
	if ws, err := c.WindowStatus(ctx, a.object(), opts.Now()); err == nil {
		r.Window = ws.Reason
	}
	if r.Window == "" {
		r.Window = "project " + a.Project
	}
	return r
}

// recordOverride writes the durable audit record of the override operation rid, once it was
// requested: the AnnotationLastOverride annotation under AuditFieldManager and an Event on the
// Application. The operation's info already carries reason, caller and window, so a failure here
// is returned for a warning, not a failed sync.
func (c *Client) recordOverride(ctx context.Context, a App, rec OverrideRecord, rid string, now time.Time) error {
	rec.RequestID = rid
	rec.At = now.UTC().Format(time.RFC3339)
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	// Only the annotation: everything in this object is owned by AuditFieldManager.
	ann := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
		"metadata": map[string]any{"name": a.Name, "namespace": c.namespace, "annotations": map[string]any{AnnotationLastOverride: string(b)}}}}
	app, err := c.res(ApplicationGVR).Apply(ctx, a.Name, ann, metav1.ApplyOptions{FieldManager: AuditFieldManager, Force: true})
	if err != nil {
		return fmt.Errorf("record the override on application %s: %w", a.Name, err)
	}
	msg := fmt.Sprintf("ferry overrode the deployment window to sync %s (request %s) by %s: %s; window: %s", rec.Revision, rid, rec.By, rec.Reason, rec.Window)
	ts := now.UTC().Format(time.RFC3339)
	ev := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1",
		"kind":       "Event",
		"metadata":   map[string]any{"name": fmt.Sprintf("%s.%x", a.Name, now.UnixNano()), "namespace": c.namespace},
		"involvedObject": map[string]any{
			"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "name": a.Name, "namespace": c.namespace,
			"uid": string(app.GetUID()), "resourceVersion": app.GetResourceVersion(),
		},
		"reason":         EventReasonOverride,
		"message":        msg,
		"type":           "Normal",
		"source":         map[string]any{"component": "ferry"},
		"firstTimestamp": ts,
		"lastTimestamp":  ts,
		"count":          int64(1),
	}}
	if _, err := c.dyn.Resource(EventGVR).Namespace(c.namespace).Create(ctx, ev, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("record the override as an Event on application %s: %w", a.Name, err)
	}
	return nil
}

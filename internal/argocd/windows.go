package argocd

import (
	"context"
	"fmt"
	"time"

	"github.com/ferry-dev/terraform-provider-ferry/internal/window"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Deployment windows as Argo CD applies them to a manual sync of one Application.

// WindowStatus evaluates the deployment windows of a project that apply to app for a manual sync
// at t.
func (c *Client) WindowStatus(ctx context.Context, app *unstructured.Unstructured, t time.Time) (window.Status, error) {
	project := str(app.Object, "spec", "project")
	if project == "" {
		project = "default"
	}
	p, err := c.get(ctx, AppProjectGVR, project)
	if err != nil {
		return window.Status{}, err
	}
	specs := matchingWindows(p, app)
	ws, err := window.Parse(specs, func(i int) string { return fmt.Sprintf("project %s syncWindows[%d]", project, i) })
	if err != nil {
		return window.Status{}, err
	}
	return window.Evaluate(ws, t, true), nil
}

// ProjectWindows returns the deployment windows of an AppProject, all of them.
func ProjectWindows(p *unstructured.Unstructured) []window.Spec {
	return matchingWindows(p, nil)
}

// matchingWindows returns the project's sync windows that apply to app (all when app is nil),
// with Argo CD's selector rules: applications, namespaces and clusters globs, OR unless andOperator.
func matchingWindows(p *unstructured.Unstructured, app *unstructured.Unstructured) []window.Spec {
	sws, _, _ := unstructured.NestedSlice(p.Object, "spec", "syncWindows")
	var out []window.Spec
	for _, sw := range sws {
		m, ok := sw.(map[string]any)
		if !ok {
			continue
		}
		if app != nil && !windowMatches(m, app) {
			continue
		}
		w := window.Spec{}
		w.Kind, _ = m["kind"].(string)
		w.Schedule, _ = m["schedule"].(string)
		w.Duration, _ = m["duration"].(string)
		w.TimeZone, _ = m["timeZone"].(string)
		w.ManualSync, _ = m["manualSync"].(bool)
		w.Description, _ = m["description"].(string)
		out = append(out, w)
	}
	return out
}

// windowMatches reports whether the sync window w applies to app, by Argo CD's rules
// (window.Scope.Matches).
func windowMatches(w map[string]any, app *unstructured.Unstructured) bool {
	globs := func(key string) []string {
		l, _ := w[key].([]any)
		var out []string
		for _, v := range l {
			if s, ok := v.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	and, _ := w["andOperator"].(bool)
	scope := window.Scope{Applications: globs("applications"), Namespaces: globs("namespaces"), Clusters: globs("clusters"), AndOperator: and}
	return scope.Matches(window.Target{
		Application: app.GetName(),
		Namespace:   str(app.Object, "spec", "destination", "namespace"),
		Server:      str(app.Object, "spec", "destination", "server"),
		Name:        str(app.Object, "spec", "destination", "name"),
	})
}

func windowError(project string, ws window.Status, now time.Time, extra string) *SyncError {
	e := &SyncError{Class: ClassWindow, NextOpen: ws.NextOpen}
	if ws.NextOpen != nil {
		e.Summary = fmt.Sprintf("deployment window closed for %s; next opens %s (in %s)", project, ws.NextOpen.UTC().Format(time.RFC3339), humanDuration(ws.NextOpen.Sub(now)))
	} else {
		e.Summary = fmt.Sprintf("deployment window closed for %s; it does not open within the search horizon", project)
	}
	e.LastMessage = ws.Reason
	e.Advice = "Wait for the window, set window_policy = \"wait\" to wait within the timeout, or window_policy = \"override\" with an override_reason for an emergency."
	if extra != "" {
		e.Advice = extra + ". " + e.Advice
	}
	return e
}

func humanDuration(d time.Duration) string {
	d = d.Round(time.Minute)
	days := d / (24 * time.Hour)
	d -= days * 24 * time.Hour
	h := d / time.Hour
	m := (d - h*time.Hour) / time.Minute
	switch {
	case days > 0:
		return fmt.Sprintf("%dd%dh", days, h)
	case h > 0:
		return fmt.Sprintf("%dh%dm", h, m)
	}
	return fmt.Sprintf("%dm", m)
}

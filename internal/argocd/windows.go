package argocd

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ferry-dev/terraform-provider-ferry/internal/window"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Deployment windows as Argo CD applies them to a manual sync of one Application.

// WindowStatus evaluates the deployment windows of a project that apply to app for a manual sync
// at t. A window that is invalid (a schedule, duration or time zone window.Parse refuses, or a
// scope glob window.Glob refuses, in any of the project's windows) is an error wrapping
// window.ErrInvalidWindow; other errors are those of reading the project.
func (c *Client) WindowStatus(ctx context.Context, app *unstructured.Unstructured, t time.Time) (window.Status, error) {
	project := str(app.Object, "spec", "project")
	if project == "" {
		project = "default"
	}
	p, err := c.get(ctx, AppProjectGVR, project)
	if err != nil {
		return window.Status{}, err
	}
	return ProjectWindowStatus(p, app, t)
}

// ProjectWindowStatus is WindowStatus for a project object already read: the windows of project
// that apply to app (every window when app is nil) evaluated for a manual sync at t, without a
// request. Invalid windows are an error wrapping window.ErrInvalidWindow.
func ProjectWindowStatus(project, app *unstructured.Unstructured, t time.Time) (window.Status, error) {
	name := project.GetName()
	label := func(i int) string { return fmt.Sprintf("project %s syncWindows[%d]", name, i) }
	specs, err := matchingWindows(project, app, label)
	if err != nil {
		return window.Status{}, err
	}
	ws, err := window.Parse(specs, label)
	if err != nil {
		return window.Status{}, err
	}
	return window.Evaluate(ws, t, true), nil
}

// ProjectWindows returns the deployment windows of an AppProject, all of them, and an error
// wrapping window.ErrInvalidWindow, naming each field as syncWindows[i].applications[j], when a
// window's applications, namespaces or clusters hold a glob window.Glob refuses (the windows
// are returned all the same).
func ProjectWindows(p *unstructured.Unstructured) ([]window.Spec, error) {
	return matchingWindows(p, nil, func(i int) string { return fmt.Sprintf("syncWindows[%d]", i) })
}

// matchingWindows returns the project's sync windows that apply to app (all when app is nil),
// with Argo CD's selector rules: applications, namespaces and clusters globs, OR unless
// andOperator. Every window's globs are validated, whether it applies or not (a pattern ferry
// refuses would decide whether it applies): the error joins a *window.SpecError for each one
// refused, labelled with label.
func matchingWindows(p *unstructured.Unstructured, app *unstructured.Unstructured, label func(int) string) ([]window.Spec, error) {
	sws, _, _ := unstructured.NestedSlice(p.Object, "spec", "syncWindows")
	var out []window.Spec
	var errs []error
	for i, sw := range sws {
		m, ok := sw.(map[string]any)
		if !ok {
			continue
		}
		scope := windowScope(m)
		for _, l := range []struct {
			name     string
			patterns []string
		}{{"applications", scope.Applications}, {"namespaces", scope.Namespaces}, {"clusters", scope.Clusters}} {
			for j, pat := range l.patterns {
				if _, err := window.Glob(pat, ""); err != nil {
					errs = append(errs, &window.SpecError{Index: i, Label: label(i), Field: fmt.Sprintf("%s[%d]", l.name, j), Err: err})
				}
			}
		}
		if app != nil && !windowMatches(scope, app) {
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
	return out, errors.Join(errs...)
}

// windowScope returns the selectors of the sync window w.
func windowScope(w map[string]any) window.Scope {
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
	return window.Scope{Applications: globs("applications"), Namespaces: globs("namespaces"), Clusters: globs("clusters"), AndOperator: and}
}

// windowMatches reports whether a sync window with scope applies to app, by Argo CD's rules
// (window.Scope.Matches).
func windowMatches(scope window.Scope, app *unstructured.Unstructured) bool {
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

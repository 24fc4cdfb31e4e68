package argocd

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/ferry-dev/terraform-provider-ferry/internal/window"
)

// TestWindowMatches: the engine picks a project's windows for an application by Argo CD's rules
// (window.Scope): `*` crosses `/`, a cluster pattern never matches a missing destination.
func TestWindowMatches(t *testing.T) {
	app := func(server string) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{"metadata": map[string]any{"name": "shop-acme"},
			"spec": map[string]any{"destination": map[string]any{"server": server, "namespace": "acme"}}}}
	}
	for _, tt := range []struct {
		name   string
		window map[string]any
		app    *unstructured.Unstructured
		want   bool
	}{
		{"star crosses slashes", map[string]any{"clusters": []any{"*.svc"}}, app("https://kubernetes.default.svc"), true},
		{"cluster star needs a destination", map[string]any{"clusters": []any{"*"}}, app(""), false},
		{"application glob", map[string]any{"applications": []any{"shop-*"}}, app("https://x"), true},
		{"and operator", map[string]any{"applications": []any{"shop-*"}, "namespaces": []any{"other"}, "andOperator": true}, app("https://x"), false},
		{"or", map[string]any{"applications": []any{"shop-*"}, "namespaces": []any{"other"}}, app("https://x"), true},
		{"no lists", map[string]any{}, app("https://x"), false},
	} {
		if got := windowMatches(windowScope(tt.window), tt.app); got != tt.want {
			t.Errorf("%s: windowMatches() = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestProjectWindowsUnsupportedGlob: a window whose scope holds a glob ferry refuses makes the
// project's windows invalid, naming the field, whether the window applies to the application or
// not (the refused glob is what would decide it).
func TestProjectWindowsUnsupportedGlob(t *testing.T) {
	p := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"syncWindows": []any{
		map[string]any{"kind": "allow", "schedule": "* * * * *", "duration": "1h", "applications": []any{"*"}},
		map[string]any{"kind": "deny", "schedule": "* * * * *", "duration": "1h", "applications": []any{"shop-*", "{shop,api}-*"}},
		map[string]any{"kind": "deny", "schedule": "0 1 * * *", "duration": "1h", "namespaces": []any{"app-["}},
	}}}}
	specs, err := ProjectWindows(p)
	if !errors.Is(err, window.ErrInvalidWindow) || !errors.Is(err, window.ErrUnsupportedGlob) {
		t.Fatalf("ProjectWindows() error = %v, want one wrapping ErrInvalidWindow and ErrUnsupportedGlob", err)
	}
	for _, want := range []string{`syncWindows[1].applications[1]: glob pattern "{shop,api}-*"`, `syncWindows[2].namespaces[0]: glob pattern "app-["`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("ProjectWindows() error = %v, want it to name %q", err, want)
		}
	}
	if len(specs) != 3 {
		t.Errorf("ProjectWindows() = %d windows, want all 3", len(specs))
	}
	app := &unstructured.Unstructured{Object: map[string]any{"metadata": map[string]any{"name": "other"}}}
	if _, err := matchingWindows(p, app, func(i int) string { return fmt.Sprintf("project p syncWindows[%d]", i) }); !errors.Is(err, window.ErrInvalidWindow) ||
		!strings.Contains(err.Error(), "project p syncWindows[1].applications[1]") {
		t.Errorf("matchingWindows(not matching) error = %v, want the invalid glob", err)
	}
	p.Object["spec"] = map[string]any{"syncWindows": []any{p.Object["spec"].(map[string]any)["syncWindows"].([]any)[0]}}
	if _, err := ProjectWindows(p); err != nil {
		t.Errorf("ProjectWindows(valid) error = %v", err)
	}
}

package argocd

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
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
		if got := windowMatches(tt.window, tt.app); got != tt.want {
			t.Errorf("%s: windowMatches() = %v, want %v", tt.name, got, tt.want)
		}
	}
}

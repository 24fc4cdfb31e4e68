package window

import (
	"errors"
	"testing"
)

func TestGlob(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"*", "", true},
		{"*", "anything/at all", true},
		{"**", "a/b", true},
		{"", "", true},
		{"", "a", false},
		{"app-?", "app-1", true},
		{"app-?", "app-10", false},
		{"app-?", "app-", false},
		{"?", "é", true},
		{"[ab]*", "billing", true},
		{"[ab]*", "shop", false},
		{"[!a]*", "app-1", false},
		{"[!a]*", "shop", true},
		{"[a-c]*", "billing", true},
		{"[!a-c]*", "billing", false},
		{"app-[0-9]", "app-7", true},
		{"*.svc", "https://kubernetes.default.svc", true},
		{"https://*", "https://prod.example.com/k8s", true},
		{"*prod*", "https://prod.example.com/k8s", true},
		{"a*b*c", "aXbYbZc", true},
		{"a*b*c", "aXbYbZ", false},
		{"prod-*", "prod-", true},
		{"team-[ab]", "team-c", false},
		{"a,b!-c", "a,b!-c", true},
		{"[a!]", "!", true},
	}
	for _, tt := range tests {
		got, err := Glob(tt.pattern, tt.s)
		if err != nil || got != tt.want {
			t.Errorf("Glob(%q, %q) = %v, %v, want %v, nil", tt.pattern, tt.s, got, err, tt.want)
		}
	}
}

func TestGlobRefused(t *testing.T) {
	for _, p := range []string{"{a,b}*", "app\\-1", "[ab-c]", "[a-c0-9]", "[", "[]", "[!]", "a]", "{", "}", "[a-]", "[z-a]", "[.-z]", "\xff"} {
		if _, err := Glob(p, "a"); !errors.Is(err, ErrUnsupportedGlob) {
			t.Errorf("Glob(%q) error = %v, want ErrUnsupportedGlob", p, err)
		}
	}
}

func TestScopeMatches(t *testing.T) {
	app := Target{Application: "app-1", Namespace: "team-a", Server: "https://kubernetes.default.svc", Name: "in-cluster"}
	none := Target{Application: "app-1"}
	tests := []struct {
		name  string
		scope Scope
		t     Target
		want  bool
	}{
		{"no lists", Scope{}, app, false},
		{"no lists with and", Scope{AndOperator: true}, app, false},
		{"application", Scope{Applications: []string{"shop", "app-?"}}, app, true},
		{"application misses", Scope{Applications: []string{"shop"}}, app, false},
		{"or: cluster name", Scope{Applications: []string{"shop"}, Clusters: []string{"in-*"}}, app, true},
		{"or: namespace", Scope{Applications: []string{"shop"}, Namespaces: []string{"team-?"}}, app, true},
		{"and: namespace misses", Scope{Applications: []string{"app-*"}, Namespaces: []string{"prod"}, AndOperator: true}, app, false},
		{"and: all match", Scope{Applications: []string{"app-*"}, Namespaces: []string{"team-a"}, Clusters: []string{"*.svc"}, AndOperator: true}, app, true},
		{"cluster star needs a destination", Scope{Clusters: []string{"*"}}, none, false},
		{"namespace star matches no namespace", Scope{Namespaces: []string{"*"}}, none, true},
		{"refused pattern matches nothing", Scope{Applications: []string{"{app,shop}-*"}}, app, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.scope.Matches(tt.t); got != tt.want {
				t.Errorf("Matches(%+v) = %v, want %v", tt.t, got, tt.want)
			}
		})
	}
}

func TestScopeValidate(t *testing.T) {
	if err := (Scope{Applications: []string{"*", "app-?"}, Clusters: []string{"https://*"}}).Validate(); err != nil {
		t.Errorf("Validate() = %v, want nil", err)
	}
	err := Scope{Applications: []string{"*"}, Clusters: []string{"ok", "{a,b}"}}.Validate()
	if !errors.Is(err, ErrUnsupportedGlob) {
		t.Fatalf("Validate() = %v, want ErrUnsupportedGlob", err)
	}
	if got, want := err.Error(), `clusters[1]: glob pattern "{a,b}": '{' is not supported: unsupported glob pattern`; got != want {
		t.Errorf("Validate() = %q, want %q", got, want)
	}
}

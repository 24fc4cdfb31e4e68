package main

import (
	"context"
	"encoding/json"
	"net"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/ferry-dev/terraform-provider-ferry/internal/argocd"
)

// TestCLIWindowCheck reads a live AppProject from a real kube-apiserver (with Argo CD's CRDs) and
// checks the exit codes and output of `ferry window check`.
func TestCLIWindowCheck(t *testing.T) {
	e := sharedEnv.Get(t)
	c, err := argocd.New(e.Cluster.RESTConfig(), e.ArgoCD.Namespace)
	if err != nil {
		t.Fatal(err)
	}
	err = c.ApplyEnvironment(context.Background(), argocd.Environment{
		Name: "wincheck", Namespaces: []string{"wincheck"}, SourceRepositories: []string{"oci://x/*"},
		Cluster: argocd.Cluster{Server: e.ArgoCD.ClusterServer, BearerToken: e.Cluster.Token, Insecure: true}, // as every environment of the cluster: Argo CD may use any of them for its URL
		Windows: windowSpecs("allow", "0 2 * * *", "2h", "Europe/Berlin"),
	})
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"KUBE_CONFIG_PATH=" + e.Cluster.Kubeconfig}
	args := func(extra ...string) []string {
		return append([]string{"window", "check", "--environment", "wincheck", "--argocd-namespace", e.ArgoCD.Namespace}, extra...)
	}
	// 02:00 Berlin in November is 01:00 UTC.
	r := ferry(t, env, "", args("--at", "2026-11-26T01:30:00Z")...)
	if r.code != 0 || !strings.Contains(r.stdout, "is open at 2026-11-26T01:30:00Z") || !strings.Contains(r.stdout, "Next closes: 2026-11-26T03:00:00Z") {
		t.Errorf("window check (open) = exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = ferry(t, env, "", args("--at", "2026-11-26T12:00:00Z", "--format", "json")...)
	var res struct {
		Open     bool
		Reason   string
		NextOpen string
	}
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("window check --format json: %v\n%s", err, r.stdout)
	}
	if r.code != 4 || res.Open || res.NextOpen != "2026-11-27T01:00:00Z" || res.Reason == "" {
		t.Errorf("window check (closed) = exit %d %+v, want exit 4, next open 2026-11-27T01:00:00Z", r.code, res)
	}
	// Frozen: closed, and the reason says so.
	p, _ := e.Cluster.Dynamic(t).Resource(argocd.AppProjectGVR).Namespace(e.ArgoCD.Namespace).Get(context.Background(), "wincheck", metav1.GetOptions{})
	ws, _, _ := unstructured.NestedSlice(p.Object, "spec", "syncWindows")
	ws = append(ws, map[string]any{"kind": "deny", "schedule": "* * * * *", "duration": "1h", "applications": []any{"*"}, "description": argocd.FrozenWindowDescription})
	unstructured.SetNestedSlice(p.Object, ws, "spec", "syncWindows")
	if _, err := e.Cluster.Dynamic(t).Resource(argocd.AppProjectGVR).Namespace(e.ArgoCD.Namespace).Update(context.Background(), p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	r = ferry(t, env, "", args("--at", "2026-11-26T01:30:00Z")...)
	if r.code != 4 || !strings.Contains(r.stdout, "frozen") {
		t.Errorf("window check (frozen) = exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// A glob ferry refuses in a window's scope makes the windows invalid (2), naming the field,
	// rather than a window that silently applies to nothing.
	p, _ = e.Cluster.Dynamic(t).Resource(argocd.AppProjectGVR).Namespace(e.ArgoCD.Namespace).Get(context.Background(), "wincheck", metav1.GetOptions{})
	unstructured.SetNestedSlice(p.Object, []any{ws[0], map[string]any{"kind": "deny", "schedule": "* * * * *", "duration": "1h", "applications": []any{"{shop,api}-*"}}}, "spec", "syncWindows")
	if _, err := e.Cluster.Dynamic(t).Resource(argocd.AppProjectGVR).Namespace(e.ArgoCD.Namespace).Update(context.Background(), p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	r = ferry(t, env, "", args("--at", "2026-11-26T01:30:00Z")...)
	if r.code != 2 || !strings.Contains(r.stderr, `syncWindows[1].applications[0]: glob pattern "{shop,api}-*"`) {
		t.Errorf("window check (unsupported glob) = exit %d\n%s%s, want 2 naming syncWindows[1].applications[0]", r.code, r.stdout, r.stderr)
	}
	// A server certificate that does not verify is permanent (2), not an unreachable cluster.
	r = ferry(t, []string{"KUBE_TOKEN=x"}, "", "window", "check", "--environment", "wincheck", "--server", e.Cluster.Host)
	if r.code != 2 || !strings.Contains(r.stderr, "x509") {
		t.Errorf("window check against an unverified certificate = exit %d %q, want 2 and the x509 error", r.code, r.stderr)
	}
	if r := ferry(t, env, "", "window", "check", "--environment", "missing", "--argocd-namespace", e.ArgoCD.Namespace); r.code != 2 || !strings.Contains(r.stderr, "environment name") {
		t.Errorf("window check of a missing environment = exit %d %q, want 2 naming the environment", r.code, r.stderr)
	}
	// An unreachable cluster is transient (3), and the hint is about reaching it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "https://" + l.Addr().String()
	l.Close()
	r = ferry(t, []string{"KUBE_TOKEN=x"}, "", "window", "check", "--environment", "wincheck", "--server", closed, "--insecure-skip-tls-verify")
	if r.code != 3 || !strings.Contains(r.stderr, "reachable") || strings.Contains(r.stderr, "environment name") {
		t.Errorf("window check against a closed port = exit %d %q, want 3 saying to check that the cluster is reachable", r.code, r.stderr)
	}
}

package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestCLIAppWaitOptions: `ferry app wait` honours --health-timeout and --stuck-after (it follows
// the operation with the same loop as `ferry app sync`): each ends the wait as stuck (exit 5) long
// before --timeout, and the operation it did not request is left running.
func TestCLIAppWaitOptions(t *testing.T) {
	e := sharedEnv.Get(t)
	env := []string{"KUBE_CONFIG_PATH=" + e.Cluster.Kubeconfig}
	later := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: later, annotations: {argocd.argoproj.io/sync-wave: \"1\"}}\n"
	tests := []struct {
		name      string
		manifests map[string]string
		flag      []string
		summary   string
	}{
		// One wave: the operation succeeds, the Deployment never becomes ready.
		{"health-timeout", map[string]string{"deploy.yaml": stuckDeployment}, []string{"--health-timeout", "5s"}, "not healthy 5s after the sync"},
		// A later wave: the operation waits for the Deployment forever.
		{"stuck-after", map[string]string{"deploy.yaml": stuckDeployment, "later.yaml": later}, []string{"--stuck-after", "5s"}, "no progress for 5s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			name := "cli-wait-" + tt.name
			appFixture(t, e, name, e.ArgoCD.ClusterServer, nil, tt.manifests)
			ns := []string{"--argocd-namespace", e.ArgoCD.Namespace}
			if r := ferry(t, env, "", append([]string{"app", "sync", name, "--no-wait"}, ns...)...); r.code != 0 {
				t.Fatalf("sync --no-wait = exit %d: %s", r.code, r.stderr)
			}
			t.Cleanup(func() { ferry(t, env, "", append([]string{"app", "terminate", name}, ns...)...) })
			start := time.Now()
			r := ferry(t, env, "", append(append([]string{"app", "wait", name, "--format", "json", "--timeout", "3m"}, ns...), tt.flag...)...)
			var out struct{ Class, Error string }
			if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
				t.Fatalf("ferry app wait --format json: %v\n%s\n%s", err, r.stdout, r.stderr)
			}
			if r.code != 5 || out.Class != "stuck" || !strings.Contains(out.Error, tt.summary) {
				t.Errorf("ferry app wait %v = exit %d class %q (%s), want exit 5 class stuck with %q", tt.flag, r.code, out.Class, out.Error, tt.summary)
			}
			if took := time.Since(start); took > 90*time.Second {
				t.Errorf("ferry app wait %v took %s, want it to end well before --timeout 3m", tt.flag, took.Round(time.Second))
			}
		})
	}
}

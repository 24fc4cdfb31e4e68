package argocd

import (
	"strings"
	"testing"
)

// TestPodProblem: which kubelet-reported container states make a workload fail at once.
func TestPodProblem(t *testing.T) {
	pod := func(status string) map[string]any {
		return map[string]any{"metadata": map[string]any{"name": "api-1"}, "status": map[string]any{"containerStatuses": []any{
			map[string]any{"name": "api", "image": "shop/api@sha256:1", "restartCount": int64(restartsOf(status)), "state": map[string]any{"waiting": map[string]any{"reason": status, "message": "m"}},
				"lastState": map[string]any{"terminated": map[string]any{"exitCode": int64(3), "reason": "Error", "message": "panic: no config\n"}}},
		}}}
	}
	for _, tt := range []struct {
		reason, want, detail string
	}{
		{"CrashLoopBackOff", "crash-looping", "container api of Pod api-1 exited with code 3 (Error) and was restarted 3 times: panic: no config"},
		{"CrashLoopBackOff-early", "", ""},
		{"ContainerCreating", "", ""},
		{"ImagePullBackOff", "unable to pull its image", "cannot pull shop/api@sha256:1: m"},
		{"CreateContainerConfigError", "misconfigured", "cannot be created (CreateContainerConfigError): m"},
	} {
		p := pod(strings.TrimSuffix(tt.reason, "-early"))
		if strings.HasSuffix(tt.reason, "-early") {
			p["status"].(map[string]any)["containerStatuses"].([]any)[0].(map[string]any)["restartCount"] = int64(CrashLoopRestarts - 1)
		}
		got := podProblem(p)
		if tt.want == "" {
			if got != nil {
				t.Errorf("%s: podProblem = %+v, want none", tt.reason, got)
			}
			continue
		}
		if got == nil || got.Reason != tt.want || !strings.Contains(got.Detail, tt.detail) || got.Pod != "api-1" || got.Container != "api" {
			t.Errorf("%s: podProblem = %+v, want reason %q with %q", tt.reason, got, tt.want, tt.detail)
		}
	}
}

func restartsOf(reason string) int {
	if reason == "CrashLoopBackOff" {
		return CrashLoopRestarts
	}
	return 0
}

// TestClusterRESTConfig: the client configuration of a destination comes from Argo CD's cluster
// Secret; exec authentication is refused rather than half-used.
func TestClusterRESTConfig(t *testing.T) {
	cfg, err := clusterRESTConfig(map[string]string{"server": "https://10.0.0.1:6443",
		"config": `{"bearerToken":"tok","tlsClientConfig":{"insecure":false,"caData":"Q0E="}}`})
	if err != nil || cfg.Host != "https://10.0.0.1:6443" || cfg.BearerToken != "tok" || string(cfg.CAData) != "CA" {
		t.Errorf("clusterRESTConfig = %+v, %v", cfg, err)
	}
	if _, err := clusterRESTConfig(map[string]string{"server": "https://x", "config": `{"execProviderConfig":{"command":"aws"}}`}); err == nil {
		t.Error("exec authentication accepted")
	}
}

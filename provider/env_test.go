package provider

import (
	"strings"
	"testing"

	"github.com/ferry-dev/terraform-provider-ferry/internal/testenv"
)

// sharedEnv is the registry, Kubernetes control plane and Argo CD the resource tests share.
// Its simulated kubelet runs only Pods pinned to its Node (crash loops); every other Pod stays
// Pending, so Deployments that must never become ready stay that way.
var sharedEnv = testenv.NewShared(testenv.Options{Registry: true, ArgoCD: true,
	ClusterOptions: testenv.ClusterOptions{SimulatedKubelet: true, SimulatedKubeletNoScheduler: true}})

// uniqueName returns a DNS label unique to the test.
func uniqueName(t *testing.T, prefix string) string {
	n := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	if len(n) > 40 {
		n = n[len(n)-40:]
	}
	return strings.Trim(prefix+"-"+n, "-")
}

// testEnvLike lets configs use the shared environment with another cluster server.
type testEnvLike interface {
	env() *testenv.Env
	server() string
}

type testEnv struct {
	e   *testenv.Env
	srv string
}

func (t testEnv) env() *testenv.Env { return t.e }

func (t testEnv) server() string {
	if t.srv != "" {
		return t.srv
	}
	return t.e.ArgoCD.ClusterServer
}

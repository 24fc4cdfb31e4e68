package argocd_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-dev/terraform-provider-ferry/internal/argocd"
	"github.com/ferry-dev/terraform-provider-ferry/internal/testenv"
)

// Every failure class produced end to end against the real controller, repo-server and (simulated)
// kubelet, never by writing Argo CD's status. Classes other tests already show: conflict
// (TestAutomatedSyncConflict, TestConcurrentSyncRequests, TestOverrideHeldForeignOperation), window
// held while queued (TestFailWindowSkewWithdraws), crash loop (TestCrashLoop), stuck after
// (TestWaitStuckAfter), controller sync timeout (TestControllerSyncTimeout), still OutOfSync
// (TestStillOutOfSync).

// syncErr fails t unless err is a SyncError of class want; it logs the error so that the messages
// Argo CD wrote can be read off a verbose run.
func syncErr(t *testing.T, err error, want argocd.Class) *argocd.SyncError {
	t.Helper()
	var se *argocd.SyncError
	if !errors.As(err, &se) {
		t.Fatalf("Sync() = %v, want a SyncError of class %s", err, want)
	}
	t.Logf("class %s, summary %q, last message %q, resources %v", se.Class, se.Summary, se.LastMessage, se.Resources)
	if se.Class != want {
		t.Fatalf("Sync() = %v (class %s), want class %s", err, se.Class, want)
	}
	return se
}

// TestClassTransientRegistryUnreachable: the registry is unreachable (a TCP proxy in front of the
// shared registry, taken down; the application's repository names the proxy) while the
// repo-server resolves the bundle, so Argo CD ends ferry's operation in Error with a
// ComparisonError; ferry classifies it transient, retries with backoff, the proxy comes back
// before the retry, and the sync succeeds, reporting one retry.
func TestClassTransientRegistryUnreachable(t *testing.T) {
	t.Parallel()
	e := shared.Get(t)
	proxy := testenv.StartTCPProxy(t, e.Registry.Addr)
	proxy.Down()
	_, c, a := setupIn(t, e, "class-transient", map[string]string{"cm.yaml": cm("a", "1")})
	a.RepoURL = strings.Replace(a.RepoURL, e.Registry.Addr, proxy.Addr, 1)
	env := environment(e, a.Name)
	env.SourceRepositories = []string{"oci://" + proxy.Addr + "/engine/*"}
	env.RegistryCredentials = &argocd.RegistryCredentials{URL: a.RepoURL, PlainHTTP: true}
	if err := c.ApplyEnvironment(context.Background(), env); err != nil {
		t.Fatal(err)
	}
	var transient atomic.Value
	res, err := c.Sync(context.Background(), a, true, argocd.SyncOptions{Timeout: 3 * time.Minute, RetryBackoff: 2 * time.Second,
		OnProgress: func(s string) {
			t.Log(s)
			if strings.HasPrefix(s, "transient failure") && transient.Load() == nil {
				transient.Store(s)
				if err := proxy.Up(); err != nil {
					t.Error(err)
				}
			}
		}})
	if err != nil {
		t.Fatalf("Sync() = %v, want success once the registry is back", err)
	}
	// At least one retry: on a loaded machine the controller may fail the retry too, with a
	// ComparisonError it had not yet re-evaluated since the registry came back.
	if res.Retries < 1 || res.Revision != a.Digest || res.HealthStatus != "Healthy" {
		t.Errorf("Sync() = %+v, want Healthy at %s after at least 1 retry", res, a.Digest)
	}
	if msg, _ := transient.Load().(string); !strings.Contains(msg, "connection refused") {
		t.Errorf("transient progress line %q, want the registry's connection refused", msg)
	}
}

// TestClassTransientClusterUnreachable: the environment's cluster Secret points at a closed port;
// ferry classifies Argo CD's failure transient and, with retries exhausted, reports it so.
func TestClassTransientClusterUnreachable(t *testing.T) {
	t.Parallel()
	e, c, a := setup(t, "class-cluster", map[string]string{"cm.yaml": cm("a", "1")})
	a = unreachableCluster(t, e, c, a)
	_, err := c.Sync(context.Background(), a, true, argocd.SyncOptions{Timeout: 2 * time.Minute, RetryBackoff: time.Second, TransientRetries: 1})
	se := syncErr(t, err, argocd.ClassTransient)
	if !strings.HasPrefix(se.Summary, "Sync failed transiently: ") {
		t.Errorf("summary %q, want it to say transiently", se.Summary)
	}
}

// TestClassStuckHealthTimeout: a one-wave Deployment whose Pod is never scheduled stays
// Progressing after the operation succeeded; with a 5 s health timeout the sync is stuck, naming
// the Deployment.
func TestClassStuckHealthTimeout(t *testing.T) {
	t.Parallel()
	_, c, a := setup(t, "class-health", map[string]string{"deploy.yaml": neverReady})
	_, err := c.Sync(context.Background(), a, true, argocd.SyncOptions{Timeout: 2 * time.Minute, HealthTimeout: 5 * time.Second})
	se := syncErr(t, err, argocd.ClassStuck)
	if !strings.HasPrefix(se.Summary, "Sync stuck: not healthy 5s after the sync") {
		t.Errorf("summary %q, want not healthy 5s after the sync", se.Summary)
	}
	if len(se.Resources) == 0 || se.Resources[0].Kind != "Deployment" || se.Resources[0].Name != "api" {
		t.Errorf("resources %v, want the Deployment api first", se.Resources)
	}
}

// TestClassImagePullBackOff: a Deployment whose image the kubelet cannot pull (ErrImagePull, then
// ImagePullBackOff) fails at once as permanent, naming the Deployment, Pod, container and image.
func TestClassImagePullBackOff(t *testing.T) {
	t.Parallel()
	image := testenv.UnpullableRegistry + "/api:1"
	_, c, a := setup(t, "class-pull", map[string]string{"deploy.yaml": testenv.PinnedDeployment("api", image, "")})
	start := time.Now()
	_, err := c.Sync(context.Background(), a, true, argocd.SyncOptions{Timeout: 2 * time.Minute})
	se := syncErr(t, err, argocd.ClassPermanent)
	if se.Summary != "Sync failed: Deployment "+a.Namespace+"/api is unable to pull its image" ||
		!strings.Contains(se.LastMessage, "container api of Pod api-") || !strings.Contains(se.LastMessage, "cannot pull "+image) ||
		!strings.Contains(se.LastMessage, `Back-off pulling image "`+image+`"`) {
		t.Errorf("Sync() = %v (%s), want permanent: unable to pull its image, naming Pod, container, image and the kubelet's message", err, se.LastMessage)
	}
	if took := time.Since(start); took > time.Minute {
		t.Errorf("Sync() took %s, want the image pull failure named within a minute", took.Round(time.Second))
	}
}

// TestClassMissingSecret: a Deployment whose container takes an environment variable from a
// Secret that does not exist waits in CreateContainerConfigError; ferry fails at once as permanent,
// misconfigured, with the kubelet's `secret "api-token" not found`.
func TestClassMissingSecret(t *testing.T) {
	t.Parallel()
	deploy := testenv.PinnedDeployment("api", "registry.example.com/api:1", "env: [{name: TOKEN, valueFrom: {secretKeyRef: {name: api-token, key: token}}}]")
	_, c, a := setup(t, "class-secret", map[string]string{"deploy.yaml": deploy})
	_, err := c.Sync(context.Background(), a, true, argocd.SyncOptions{Timeout: 2 * time.Minute})
	se := syncErr(t, err, argocd.ClassPermanent)
	if se.Summary != "Sync failed: Deployment "+a.Namespace+"/api is misconfigured" ||
		!strings.Contains(se.LastMessage, "(CreateContainerConfigError): secret \"api-token\" not found") || !strings.Contains(se.LastMessage, "container api of Pod api-") {
		t.Errorf("Sync() = %v (%s), want permanent: misconfigured, with secret \"api-token\" not found", err, se.LastMessage)
	}
}

// TestClassManifestsUnparseable: a manifest the repo-server cannot turn into an object (valid YAML
// — ferry's push refuses YAML that does not parse — but with a list for its kind, so Argo CD
// cannot unmarshal it into a Kubernetes object: codes.FailedPrecondition "Failed to unmarshal")
// gives a ComparisonError; the sync fails as permanent saying the manifests could not be
// generated.
func TestClassManifestsUnparseable(t *testing.T) {
	t.Parallel()
	_, c, a := setup(t, "class-unparseable", map[string]string{"cm.yaml": cm("a", "1"), "broken.yaml": "apiVersion: v1\nkind: [ConfigMap]\nmetadata: {name: b}\n"})
	_, err := c.Sync(context.Background(), a, true, argocd.SyncOptions{Timeout: 2 * time.Minute})
	se := syncErr(t, err, argocd.ClassPermanent)
	if !strings.HasPrefix(se.Summary, "Sync failed: Argo CD could not generate the manifests: ") || !strings.Contains(se.Summary, "broken.yaml") {
		t.Errorf("summary %q, want: Argo CD could not generate the manifests, naming broken.yaml", se.Summary)
	}
}

// TestClassRejectedManifest: a ConfigMap the API server rejects (an invalid name) fails the
// operation; the sync fails as permanent naming the resource and the API server's message.
func TestClassRejectedManifest(t *testing.T) {
	t.Parallel()
	_, c, a := setup(t, "class-rejected", map[string]string{"cm.yaml": cm("Bad_Name", "1")})
	_, err := c.Sync(context.Background(), a, true, argocd.SyncOptions{Timeout: 2 * time.Minute})
	se := syncErr(t, err, argocd.ClassPermanent)
	if !strings.HasPrefix(se.Summary, "Sync failed: ConfigMap class-rejected/Bad_Name: ") || !strings.Contains(se.Summary, "Bad_Name") {
		t.Errorf("summary %q, want it to name ConfigMap Bad_Name", se.Summary)
	}
}

// unreachableCluster points a's environment (its cluster Secret) and a at a closed loopback port,
// so Argo CD's sync fails as it does for an unreachable cluster; a is returned without cascade
// delete (Argo CD cannot delete resources from a cluster it cannot reach).
func unreachableCluster(t *testing.T, e *testenv.Env, c *argocd.Client, a argocd.App) argocd.App {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "https://" + l.Addr().String()
	l.Close()
	env := environment(e, a.Name)
	env.Cluster.Server = closed
	if err := c.ApplyEnvironment(context.Background(), env); err != nil {
		t.Fatal(err)
	}
	a.Server, a.CascadeDelete = closed, false
	return a
}

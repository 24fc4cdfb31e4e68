package provider

import (
	"context"
	"fmt"
	"github.com/ferry-dev/terraform-provider-ferry/internal/testenv"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ferry-dev/terraform-provider-ferry/internal/argocd"
)

const neverReadyDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
  annotations:
    argocd.argoproj.io/sync-wave: "0"
spec:
  replicas: 1
  %s
  selector:
    matchLabels: {app: api}
  template:
    metadata:
      labels: {app: api}
    spec:
      containers:
      - name: api
        image: registry.example.com/shop/api@sha256:1111111111111111111111111111111111111111111111111111111111111111
`

// crashLoopDeployment is a Deployment "api" whose one Pod is pinned to the simulated kubelet's
// Node and whose container exits with code 1 at once: a crash loop, as a node reports it.
var crashLoopDeployment = testenv.PinnedDeployment("api", "registry.example.com/shop/api@sha256:2222222222222222222222222222222222222222222222222222222222222222", `command: ["false"]`)

const laterWave = `apiVersion: v1
kind: ConfigMap
metadata:
  name: after-api
  annotations:
    argocd.argoproj.io/sync-wave: "1"
data: {a: b}
`

// envWithWindows is appConfig with deployment windows on the environment and extra application
// attributes.
func classConfig(e testEnvLike, env, app, pinned, envExtra, appExtra string) string {
	return testenv.ProviderConfig(e.env()) + fmt.Sprintf(`
resource "ferry_environment" "env" {
  name                = %[1]q
  namespaces          = [%[1]q]
  source_repositories = ["oci://%[2]s/apps/*"]
  cluster_resources   = ["Namespace"]
  cluster {
    server          = %[3]q
    bearer_token_wo = %[4]q
    insecure        = true
  }
%[7]s
}

resource "ferry_application" "app" {
  name        = %[5]q
  environment = ferry_environment.env.project
  bundle      = %[6]q
  namespace   = %[1]q
  sync_options {
    create_namespace = true
  }
%[8]s
}
`, env, e.env().Registry.Addr, e.server(), e.env().Cluster.Token, app, pinned, envExtra, appExtra)
}

// TestAccApplicationFailureClasses produces every failure class by real means against the real
// Argo CD and checks the diagnostic names it.
func TestAccApplicationFailureClasses(t *testing.T) {
	e := sharedEnv.Get(t)
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := "https://" + l.Addr().String()
	l.Close()
	later := time.Now().UTC().Add(12 * time.Hour)
	tests := []struct {
		name      string
		manifests map[string]string
		server    string // cluster server; "" = the real one
		envExtra  string
		appExtra  string
		want      string
	}{
		{name: "rejected manifest", manifests: map[string]string{"cm.yaml": configMap("Bad_Name", "x")},
			want: `(?s)Sync failed: .*Bad_Name.*permanent failure`},
		{name: "forbidden kind", manifests: map[string]string{"role.yaml": "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: ferry-forbidden\nrules: []\n"},
			want: `(?s)Sync failed: .*not permitted in project.*permanent failure`},
		{name: "missing path", manifests: map[string]string{"cm.yaml": configMap("a", "x")}, appExtra: `path = "nope"`,
			want: `(?s)Sync failed: .*nope.*permanent failure`},
		{name: "degraded", manifests: map[string]string{"deploy.yaml": fmt.Sprintf(neverReadyDeployment, "progressDeadlineSeconds: 10")},
			want: `(?s)Sync failed: apps/Deployment \S+/api is degraded.*permanent failure`},
		{name: "crash loop", manifests: map[string]string{"deploy.yaml": crashLoopDeployment, "later.yaml": laterWave},
			want: `(?s)Sync failed: Deployment \S+/api is crash-looping: container api of Pod api-\S+ exited with code 1 \(Error\) and was restarted \d+ times.*permanent failure.*logs\s+api-\S+\s+-c\s+api\s+--previous.*terminated\s+its\s+own\s+operation`},
		{name: "stuck", manifests: map[string]string{"deploy.yaml": fmt.Sprintf(neverReadyDeployment, ""), "later.yaml": laterWave}, appExtra: `stuck_after = "15s"`,
			want: `(?s)Sync stuck: no progress for 15s: waiting for healthy state of apps/Deployment/api.*stuck failure`},
		{name: "timeout", manifests: map[string]string{"deploy.yaml": fmt.Sprintf(neverReadyDeployment, ""), "later.yaml": laterWave}, appExtra: "timeouts {\n    create = \"40s\"\n  }",
			want: `(?s)Sync timed out after 40s.*waiting for healthy state of apps/Deployment/api.*timeout failure`},
		{name: "window closed", manifests: map[string]string{"cm.yaml": configMap("a", "x")},
			envExtra: fmt.Sprintf("deployment_window {\n    kind     = \"allow\"\n    schedule = \"0 %d * * *\"\n    duration = \"1h\"\n  }", later.Hour()),
			want:     fmt.Sprintf(`deployment window closed for \S+; next opens \d{4}-\d\d-\d\dT%02d:00:00Z \(in \d+h\d+m\)`, later.Hour())},
		{name: "unreachable cluster", manifests: map[string]string{"cm.yaml": configMap("a", "x")}, server: closed,
			appExtra: "cascade_delete = false", // Argo CD cannot delete resources from a cluster it cannot reach
			want:     `(?s)Sync failed transiently: .*connection refused.*transient failure`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := uniqueName(t, "c")
			app := uniqueName(t, "a")
			res := pushRelease(t, e, "apps/"+app, tt.manifests)
			te := testEnv{e: e, srv: tt.server}
			resource.UnitTest(t, resource.TestCase{
				ProtoV6ProviderFactories: testProviderFactories,
				Steps: []resource.TestStep{{
					Config:      classConfig(te, env, app, res.PinnedReference, tt.envExtra, tt.appExtra),
					ExpectError: regexp.MustCompile(tt.want),
				}},
			})
		})
	}
}

// TestAccApplicationNeedsApproval: a prune Argo CD must have confirmed is the approval class, with
// the command that approves it.
func TestAccApplicationNeedsApproval(t *testing.T) {
	e := sharedEnv.Get(t)
	env := uniqueName(t, "env")
	app := uniqueName(t, "app")
	confirm := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: precious\n  annotations:\n    argocd.argoproj.io/sync-options: Prune=confirm\ndata: {a: b}\n"
	v1 := pushRelease(t, e, "apps/"+app, map[string]string{"precious.yaml": confirm, "cm.yaml": configMap("other", "1")})
	v2 := pushRelease(t, e, "apps/"+app, map[string]string{"cm.yaml": configMap("other", "2")})
	// Argo CD's cascade deletion would wait for the same confirmation: keep the resources on destroy.
	prune := "cascade_delete = false\n  sync_options {\n    prune            = true\n    create_namespace = true\n  }"
	cfg := func(pinned string) string {
		return strings.Replace(classConfig(testEnv{e: e}, env, app, pinned, "", ""), "  sync_options {\n    create_namespace = true\n  }\n", "  "+prune+"\n", 1)
	}
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testProviderFactories,
		Steps: []resource.TestStep{
			{Config: cfg(v1.PinnedReference)},
			{Config: cfg(v2.PinnedReference), ExpectError: regexp.MustCompile(`(?s)Sync needs approval: Argo CD waits for a pruning confirmation.*argocd\.argoproj\.io/deletion-approved=`)},
		},
	})
}

// TestAccApplicationDeletionNeedsApproval: Argo CD's cascade deletion waits for a confirmation of
// a Delete=confirm resource; destroy fails at once with the approval class, the resource and the
// command, and succeeds once the deletion is approved.
func TestAccApplicationDeletionNeedsApproval(t *testing.T) {
	e := sharedEnv.Get(t)
	env := uniqueName(t, "env")
	app := uniqueName(t, "app")
	confirm := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: precious\n  annotations:\n    argocd.argoproj.io/sync-options: Delete=confirm\ndata: {a: b}\n"
	v1 := pushRelease(t, e, "apps/"+app, map[string]string{"precious.yaml": confirm})
	cfg := classConfig(testEnv{e: e}, env, app, v1.PinnedReference, "", "")
	dyn := e.Cluster.Dynamic(t)
	ctx := context.Background()
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testProviderFactories,
		Steps: []resource.TestStep{
			{Config: cfg},
			{Config: cfg, Destroy: true, ExpectError: regexp.MustCompile(`(?s)Deletion needs approval.*ConfigMap.*precious.*argocd\.argoproj\.io/deletion-approved=`)},
			{
				PreConfig: func() {
					patch := fmt.Sprintf(`{"metadata":{"annotations":{"argocd.argoproj.io/deletion-approved":%q}}}`, time.Now().UTC().Format(time.RFC3339))
					if _, err := dyn.Resource(argocd.ApplicationGVR).Namespace(e.ArgoCD.Namespace).Patch(ctx, app, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
						t.Fatal(err)
					}
				},
				Config: cfg, Destroy: true,
			},
		},
		CheckDestroy: func(*terraform.State) error {
			if _, err := dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}).Namespace(env).Get(ctx, "precious", metav1.GetOptions{}); err == nil {
				return fmt.Errorf("ConfigMap precious still exists after the approved deletion")
			}
			return nil
		},
	})
}

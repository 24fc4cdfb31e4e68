package provider

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8stypes "k8s.io/apimachinery/pkg/types"

	"github.com/ferry-dev/terraform-provider-ferry/internal/argocd"
)

// TestAccApplicationWaitOptions: health_timeout and stuck_after change what an apply waits for,
// with auto_sync (ferry follows Argo CD's automated sync) and without, against the real
// controller. Each application deploys a Deployment that never becomes ready, and the timeouts
// allow 3 minutes: an apply that ignored the option would end as "Sync timed out after 3m0s".
//   - health_timeout = "5s", one wave: the operation succeeds and the application stays
//     Progressing; the apply fails as stuck, "not healthy 5s after the sync";
//   - stuck_after = "5s", a later wave: the operation waits for the Deployment and shows the same
//     message; the apply fails as stuck, "no progress for 5s".
func TestAccApplicationWaitOptions(t *testing.T) {
	e := sharedEnv.Get(t)
	oneWave := map[string]string{"deploy.yaml": fmt.Sprintf(neverReadyDeployment, "")}
	twoWaves := map[string]string{"deploy.yaml": fmt.Sprintf(neverReadyDeployment, ""), "later.yaml": laterWave}
	timeouts := "\n  timeouts {\n    create = \"3m\"\n  }"
	tests := []struct {
		name      string
		manifests map[string]string
		appExtra  string
		want      string
	}{
		{"health_timeout", oneWave, `health_timeout = "5s"`,
			`(?s)Sync stuck: not healthy 5s after the sync \(Synced, Progressing\).*stuck failure`},
		{"auto_sync health_timeout", oneWave, "auto_sync      = true\n  health_timeout = \"5s\"",
			`(?s)Sync stuck: not healthy 5s after the sync \(Synced, Progressing\).*stuck failure`},
		{"auto_sync stuck_after", twoWaves, "auto_sync   = true\n  stuck_after = \"5s\"",
			`(?s)Sync stuck: no progress for 5s: waiting for healthy state of apps/Deployment/api.*stuck failure`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := uniqueName(t, "w")
			app := uniqueName(t, "a")
			res := pushRelease(t, e, "apps/"+app, tt.manifests)
			resource.UnitTest(t, resource.TestCase{
				ProtoV6ProviderFactories: testProviderFactories,
				Steps: []resource.TestStep{{
					Config:      classConfig(testEnv{e: e}, env, app, res.PinnedReference, "", tt.appExtra+timeouts),
					ExpectError: regexp.MustCompile(tt.want),
				}},
			})
		})
	}
}

// TestAccApplicationUpdateTimeout: timeouts.update bounds the sync of an update (create keeps its
// default): re-pinning to a release whose Deployment never becomes ready, in a wave a later one
// waits for, fails as "Sync timed out after 20s".
func TestAccApplicationUpdateTimeout(t *testing.T) {
	e := sharedEnv.Get(t)
	env, app := uniqueName(t, "env"), uniqueName(t, "app")
	v1 := pushRelease(t, e, "apps/"+app, map[string]string{"cm.yaml": configMap("settings", "v1")})
	v2 := pushRelease(t, e, "apps/"+app, map[string]string{"deploy.yaml": fmt.Sprintf(neverReadyDeployment, ""), "later.yaml": laterWave})
	update := "timeouts {\n    update = \"20s\"\n  }"
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testProviderFactories,
		Steps: []resource.TestStep{
			{Config: classConfig(testEnv{e: e}, env, app, v1.PinnedReference, "", update)},
			{Config: classConfig(testEnv{e: e}, env, app, v2.PinnedReference, "", update),
				ExpectError: regexp.MustCompile(`(?s)Sync timed out after 20s.*waiting for healthy state of apps/Deployment/api.*timeout failure`)},
		},
	})
}

// TestAccApplicationDestroyOptions: cascade_delete and timeouts.delete change what destroy does.
//   - cascade_delete = false: destroy deletes the Application and leaves what it deployed (with
//     the default, true, the ConfigMap goes too: TestAccApplicationLifecycle);
//   - timeouts.delete = "15s": a deployed ConfigMap with a finalizer nobody removes keeps Argo CD's
//     cascade deletion waiting, and destroy gives up after 15 s; once the finalizer is removed,
//     destroy succeeds.
func TestAccApplicationDestroyOptions(t *testing.T) {
	e := sharedEnv.Get(t)
	dyn := e.Cluster.Dynamic(t)
	ctx := context.Background()
	configMaps := schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	t.Run("cascade_delete false", func(t *testing.T) {
		t.Parallel()
		env, app := uniqueName(t, "env"), uniqueName(t, "app")
		v1 := pushRelease(t, e, "apps/"+app, map[string]string{"cm.yaml": configMap("kept", "v1")})
		resource.UnitTest(t, resource.TestCase{
			ProtoV6ProviderFactories: testProviderFactories,
			Steps:                    []resource.TestStep{{Config: classConfig(testEnv{e: e}, env, app, v1.PinnedReference, "", "cascade_delete = false")}},
			CheckDestroy: func(*terraform.State) error {
				if _, err := dyn.Resource(argocd.ApplicationGVR).Namespace(e.ArgoCD.Namespace).Get(ctx, app, metav1.GetOptions{}); err == nil {
					return fmt.Errorf("application %s still exists after destroy", app)
				}
				if _, err := dyn.Resource(configMaps).Namespace(env).Get(ctx, "kept", metav1.GetOptions{}); err != nil {
					return fmt.Errorf("ConfigMap kept after a destroy with cascade_delete = false: %v, want it left", err)
				}
				return nil
			},
		})
	})
	t.Run("timeouts delete", func(t *testing.T) {
		t.Parallel()
		env, app := uniqueName(t, "env"), uniqueName(t, "app")
		blocked := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: blocked\n  finalizers: [ferry.dev/test-blocks-deletion]\ndata: {a: b}\n"
		v1 := pushRelease(t, e, "apps/"+app, map[string]string{"cm.yaml": blocked})
		cfg := classConfig(testEnv{e: e}, env, app, v1.PinnedReference, "", "timeouts {\n    delete = \"15s\"\n  }")
		resource.UnitTest(t, resource.TestCase{
			ProtoV6ProviderFactories: testProviderFactories,
			Steps: []resource.TestStep{
				{Config: cfg},
				{
					Config:      cfg,
					Destroy:     true,
					ExpectError: regexp.MustCompile(`(?s)Unable to Delete Application.*still\s+exists.*context\s+deadline\s+exceeded`),
				},
				{
					PreConfig: func() {
						patch := []byte(`{"metadata":{"finalizers":null}}`)
						if _, err := dyn.Resource(configMaps).Namespace(env).Patch(ctx, "blocked", k8stypes.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
							t.Fatal(err)
						}
					},
					Config:  cfg,
					Destroy: true,
				},
			},
		})
	})
}

// TestAccApplicationSyncOptionFlags: the sync_options flags reach the operation Argo CD runs (the
// only place its controller reads them), and Argo CD acts on server_side_apply: the deployed
// ConfigMap is server-side applied (no kubectl last-applied-configuration annotation), where the
// default client-side apply leaves that annotation.
func TestAccApplicationSyncOptionFlags(t *testing.T) {
	e := sharedEnv.Get(t)
	const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"
	tests := []struct {
		name      string
		flags     string
		options   []string
		annotated string // "yes" or "no": the ConfigMap has the last-applied annotation; "" unchecked
	}{
		{"default", "", []string{"CreateNamespace=true"}, "yes"},
		{"server_side_apply", "server_side_apply = true\n    prune_last = true\n    apply_out_of_sync_only = true",
			[]string{"ServerSideApply=true", "CreateNamespace=true", "PruneLast=true", "ApplyOutOfSyncOnly=true"}, "no"},
		{"replace", "replace = true", []string{"CreateNamespace=true", "Replace=true"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env, app := uniqueName(t, "env"), uniqueName(t, "app")
			v1 := pushRelease(t, e, "apps/"+app, map[string]string{"cm.yaml": configMap("settings", "v1")})
			cfg := strings.Replace(classConfig(testEnv{e: e}, env, app, v1.PinnedReference, "", ""),
				"    create_namespace = true\n", "    create_namespace = true\n    "+tt.flags+"\n", 1)
			resource.UnitTest(t, resource.TestCase{
				ProtoV6ProviderFactories: testProviderFactories,
				Steps: []resource.TestStep{{
					Config: cfg,
					Check: func(*terraform.State) error {
						a := appLive(t, e, app)
						got, _, _ := unstructured.NestedStringSlice(a.Object, "status", "operationState", "operation", "sync", "syncOptions")
						slices.Sort(got)
						want := slices.Sorted(slices.Values(tt.options))
						if !slices.Equal(got, want) {
							return fmt.Errorf("operation syncOptions = %q, want %q", got, want)
						}
						cm, err := e.Cluster.Dynamic(t).Resource(schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}).Namespace(env).Get(context.Background(), "settings", metav1.GetOptions{})
						if err != nil {
							return err
						}
						if _, annotated := cm.GetAnnotations()[lastApplied]; tt.annotated != "" && annotated != (tt.annotated == "yes") {
							return fmt.Errorf("ConfigMap annotated with %s: %v, want %s", lastApplied, annotated, tt.annotated)
						}
						return nil
					},
				}},
			})
		})
	}
}

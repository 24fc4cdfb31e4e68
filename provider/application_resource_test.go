package provider

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8stypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	"github.com/ferry-dev/terraform-provider-ferry/bundle"
	"github.com/ferry-dev/terraform-provider-ferry/internal/argocd"
	"github.com/ferry-dev/terraform-provider-ferry/internal/testenv"
)

// pushRelease pushes a release with the given manifests to the shared registry and returns the
// pinned reference.
func pushRelease(t testing.TB, e *testenv.Env, repo string, manifests map[string]string) *bundle.PushResult {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{"ferry.yaml": "apiVersion: ferry.dev/v1\nkind: Bundle\nname: shop\nversion: 1.0.0\nmanifests: m\n"}
	for k, v := range manifests {
		files["m/"+k] = v
	}
	for p, c := range files {
		full := filepath.Join(dir, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c, err := bundle.NewClient(bundle.ClientOptions{PlainHTTP: true, Credentials: bundle.StaticCredentials(nil, nil)})
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := bundle.ParseReference(e.Registry.Addr + "/" + repo)
	res, err := bundle.Push(context.Background(), c, dir, ref, bundle.PushOptions{PackOptions: bundle.PackOptions{Created: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func configMap(name, value string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\ndata:\n  value: %q\n", name, value)
}

// twoReleases returns the shared environment, an environment and an application name unique to
// the test, and two releases of a ConfigMap "settings" (value v1, then v2) pushed for the app.
func twoReleases(t *testing.T) (e *testenv.Env, env, app string, v1, v2 *bundle.PushResult) {
	t.Helper()
	e = sharedEnv.Get(t)
	env, app = uniqueName(t, "env"), uniqueName(t, "app")
	v1 = pushRelease(t, e, "apps/"+app, map[string]string{"cm.yaml": configMap("settings", "v1")})
	v2 = pushRelease(t, e, "apps/"+app, map[string]string{"cm.yaml": configMap("settings", "v2")})
	return e, env, app, v1, v2
}

// appConfig is an environment plus an application of the pushed bundle.
func appConfig(e *testenv.Env, env, app, pinned, extra string) string {
	return testenv.ProviderConfig(e) + fmt.Sprintf(`
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
}

resource "ferry_application" "app" {
  name        = %[5]q
  environment = ferry_environment.env.project
  bundle      = %[6]q
  namespace   = %[1]q
  sync_options {
    create_namespace = true
  }
%[7]s
}
`, env, e.Registry.Addr, e.ArgoCD.ClusterServer, e.Cluster.Token, app, pinned, extra)
}

func TestAccApplicationSync(t *testing.T) {
	e, env, app, v1, v2 := twoReleases(t)
	addr := "ferry_application.app"
	synced := func(digest string) []statecheck.StateCheck {
		return []statecheck.StateCheck{
			statecheck.ExpectKnownValue(addr, tfjsonpath.New("sync_status"), knownvalue.StringExact("Synced")),
			statecheck.ExpectKnownValue(addr, tfjsonpath.New("health_status"), knownvalue.StringExact("Healthy")),
			statecheck.ExpectKnownValue(addr, tfjsonpath.New("synced_revision"), knownvalue.StringExact(digest)),
			statecheck.ExpectKnownValue(addr, tfjsonpath.New("last_operation").AtMapKey("phase"), knownvalue.StringExact("Succeeded")),
		}
	}
	// In HCP Terraform, the run id goes into the operation's info with the request id and digest.
	t.Setenv("TFC_RUN_ID", "run-TestAccApplicationSync")
	// operation checks what Argo CD ran: ferry's request, as a user (not automated), with the
	// sync options copied in and the info naming the request, the digest and the run.
	operation := func(s *terraform.State) error {
		live := appLive(t, e, app)
		if got, _, _ := unstructured.NestedString(live.Object, "spec", "source", "targetRevision"); got != v2.Digest {
			return fmt.Errorf("spec.source.targetRevision = %q, want %s", got, v2.Digest)
		}
		op, _, _ := unstructured.NestedMap(live.Object, "status", "operationState", "operation")
		info := map[string]string{}
		list, _, _ := unstructured.NestedSlice(op, "info")
		for _, i := range list {
			m, _ := i.(map[string]any)
			info[fmt.Sprint(m["name"])] = fmt.Sprint(m["value"])
		}
		rid := s.RootModule().Resources[addr].Primary.Attributes["last_operation.request_id"]
		if rid == "" || info[argocd.InfoRequestID] != rid || info[argocd.InfoBundleDigest] != v2.Digest || info[argocd.InfoRunID] != "run-TestAccApplicationSync" {
			return fmt.Errorf("operation info = %v, want request id %q, digest %s and the TFC run id", info, rid, v2.Digest)
		}
		user, _, _ := unstructured.NestedString(op, "initiatedBy", "username")
		automated, _, _ := unstructured.NestedBool(op, "initiatedBy", "automated")
		options, _, _ := unstructured.NestedStringSlice(op, "sync", "syncOptions")
		if user != "ferry" || automated || !slices.Contains(options, "CreateNamespace=true") {
			return fmt.Errorf("operation initiated by %q (automated %v) with sync options %v, want ferry, not automated, CreateNamespace=true", user, automated, options)
		}
		return nil
	}
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testProviderFactories,
		Steps: []resource.TestStep{
			{Config: appConfig(e, env, app, v1.PinnedReference, ""), ConfigStateChecks: synced(v1.Digest)},
			{Config: appConfig(e, env, app, v2.PinnedReference, ""), ConfigStateChecks: synced(v2.Digest), Check: operation},
		},
	})
}

// handEdit changes the deployed ConfigMap "settings" by hand and waits until Argo CD reports the
// application OutOfSync: drift.
func handEdit(t *testing.T, e *testenv.Env, cms dynamic.ResourceInterface, app string) {
	t.Helper()
	ctx := context.Background()
	cm, err := cms.Get(ctx, "settings", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	unstructured.SetNestedField(cm.Object, "hand-edited", "data", "value")
	if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.ArgoCD.WaitApplication(t, app, func(a *unstructured.Unstructured) bool {
		return argocd.StatusOf(a).SyncStatus == "OutOfSync"
	}, 2*time.Minute)
}

func appLive(t *testing.T, e *testenv.Env, name string) *unstructured.Unstructured {
	t.Helper()
	app, err := e.Cluster.Dynamic(t).Resource(argocd.ApplicationGVR).Namespace(e.ArgoCD.Namespace).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get application %s: %v", name, err)
	}
	return app
}

// TestAccApplicationLifecycle: drift repaired by apply, import plans empty, destroy cascades.
func TestAccApplicationLifecycle(t *testing.T) {
	e := sharedEnv.Get(t)
	env := uniqueName(t, "env")
	app := uniqueName(t, "app")
	v1 := pushRelease(t, e, "apps/"+app, map[string]string{"cm.yaml": configMap("settings", "v1")})
	dyn := e.Cluster.Dynamic(t)
	cms := dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}).Namespace(env)
	ctx := context.Background()
	addr := "ferry_application.app"
	cfg := appConfig(e, env, app, v1.PinnedReference, "")
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testProviderFactories,
		Steps: []resource.TestStep{
			{Config: cfg},
			{
				// Drift: the deployed ConfigMap edited by hand makes the app OutOfSync.
				PreConfig: func() { handEdit(t, e, cms, app) },
				Config:    cfg,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("sync_status"), knownvalue.StringExact("Synced")),
				},
				Check: func(*terraform.State) error {
					cm, err := cms.Get(ctx, "settings", metav1.GetOptions{})
					if err != nil {
						return err
					}
					if v, _, _ := unstructured.NestedString(cm.Object, "data", "value"); v != "v1" {
						return fmt.Errorf("ConfigMap value = %q after apply, want v1 (drift repaired)", v)
					}
					return nil
				},
			},
			{Config: cfg, ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}}},
			{
				ResourceName:                         addr,
				ImportState:                          true,
				ImportStateId:                        app,
				ImportStateVerify:                    true,
				ImportStateVerifyIdentifierAttribute: "name",
				ImportStateVerifyIgnore:              []string{"last_operation", "timeouts"},
			},
		},
		CheckDestroy: func(*terraform.State) error {
			if _, err := dyn.Resource(argocd.ApplicationGVR).Namespace(e.ArgoCD.Namespace).Get(ctx, app, metav1.GetOptions{}); err == nil {
				return fmt.Errorf("application %s still exists after destroy", app)
			}
			if _, err := cms.Get(ctx, "settings", metav1.GetOptions{}); err == nil {
				return fmt.Errorf("ConfigMap settings still exists: destroy did not cascade")
			}
			return nil
		},
	})
}

// TestAccApplicationDriftNoWait: with wait = false an apply leaves the sync running, and the plan
// right after it is empty (a settling sync is not drift); once the app has settled, an
// out-of-band change is planned as drift and apply re-syncs it.
func TestAccApplicationDriftNoWait(t *testing.T) {
	e := sharedEnv.Get(t)
	env, app := uniqueName(t, "env"), uniqueName(t, "app")
	v1 := pushRelease(t, e, "apps/"+app, map[string]string{"cm.yaml": configMap("settings", "v1")})
	cms := e.Cluster.Dynamic(t).Resource(schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}).Namespace(env)
	ctx := context.Background()
	addr := "ferry_application.app"
	cfg := appConfig(e, env, app, v1.PinnedReference, "  wait = false")
	settled := func(a *unstructured.Unstructured) bool {
		s := argocd.StatusOf(a)
		return !argocd.SyncSettling(a) && s.SyncStatus == "Synced" && s.Revision == v1.Digest && s.HealthStatus == "Healthy"
	}
	settledWith := func(value string) resource.TestCheckFunc {
		return func(*terraform.State) error {
			e.ArgoCD.WaitApplication(t, app, settled, 2*time.Minute)
			cm, err := cms.Get(ctx, "settings", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if v, _, _ := unstructured.NestedString(cm.Object, "data", "value"); v != value {
				return fmt.Errorf("ConfigMap value = %q, want %q", v, value)
			}
			return nil
		}
	}
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testProviderFactories,
		Steps: []resource.TestStep{
			{Config: cfg, Check: settledWith("v1")},
			{
				PreConfig: func() { handEdit(t, e, cms, app) },
				Config:    cfg,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)},
				},
				Check: settledWith("v1"),
			},
		},
	})
}

// TestAccApplicationWindowPolicies: fail names the next opening (see the failure classes), wait
// waits until the window opens, and override deploys through a closed window while a plain
// manual sync stays held by Argo CD's controller.
func TestAccApplicationWindowPolicies(t *testing.T) {
	e := sharedEnv.Get(t)
	t.Run("wait", func(t *testing.T) {
		t.Parallel()
		env := uniqueName(t, "env")
		app := uniqueName(t, "app")
		v1 := pushRelease(t, e, "apps/"+app, map[string]string{"cm.yaml": configMap("a", "v1")})
		opens := time.Now().UTC().Add(90 * time.Second).Truncate(time.Minute).Add(time.Minute)
		window := fmt.Sprintf("deployment_window {\n    kind     = \"allow\"\n    schedule = \"%d %d * * *\"\n    duration = \"1h\"\n  }", opens.Minute(), opens.Hour())
		var started time.Time
		resource.UnitTest(t, resource.TestCase{
			ProtoV6ProviderFactories: testProviderFactories,
			Steps: []resource.TestStep{{
				PreConfig: func() { started = time.Now() },
				Config:    classConfig(testEnv{e: e}, env, app, v1.PinnedReference, window, `window_policy = "wait"`),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("ferry_application.app", tfjsonpath.New("sync_status"), knownvalue.StringExact("Synced")),
				},
				Check: func(*terraform.State) error {
					op := argocd.StatusOf(appLive(t, e, app)).LastOperation
					st, _ := time.Parse(time.RFC3339, op.StartedAt)
					if st.Before(opens) {
						return fmt.Errorf("operation started at %s, before the window opened at %s", st, opens)
					}
					if time.Since(started) < time.Until(opens) {
						return fmt.Errorf("apply did not wait")
					}
					return nil
				},
			}},
		})
	})
	t.Run("override", func(t *testing.T) {
		t.Parallel()
		env := uniqueName(t, "env")
		app := uniqueName(t, "app")
		v1 := pushRelease(t, e, "apps/"+app, map[string]string{"cm.yaml": configMap("a", "v1")})
		v2 := pushRelease(t, e, "apps/"+app, map[string]string{"cm.yaml": configMap("a", "v2")})
		deny := "deployment_window {\n    kind        = \"deny\"\n    schedule    = \"* * * * *\"\n    duration    = \"1h\"\n    description = \"incident freeze\"\n  }"
		ctx := context.Background()
		dyn := e.Cluster.Dynamic(t)
		resource.UnitTest(t, resource.TestCase{
			ProtoV6ProviderFactories: testProviderFactories,
			Steps: []resource.TestStep{
				// v1 deployed while no window exists.
				{Config: classConfig(testEnv{e: e}, env, app, v1.PinnedReference, "", "")},
				// The deny window closes the environment: a plain apply of v2 fails...
				{Config: classConfig(testEnv{e: e}, env, app, v2.PinnedReference, deny, ""), ExpectError: regexp.MustCompile(`deployment window closed for ` + env)},
				// ...a manual operation written straight to the Application stays held by the controller...
				{
					PreConfig: func() {
						id := e.ArgoCD.RequestSync(t, app, v2.Digest)
						held := e.ArgoCD.WaitApplication(t, app, func(a *unstructured.Unstructured) bool {
							op := argocd.StatusOf(a).LastOperation
							return op != nil && strings.Contains(op.Message, "blocked by sync window")
						}, time.Minute)
						_ = id
						if rev := argocd.StatusOf(held).Revision; rev != v1.Digest {
							t.Fatalf("a raw manual sync deployed %s through the deny window", rev)
						}
					},
					Config:   classConfig(testEnv{e: e}, env, app, v1.PinnedReference, deny, ""),
					PlanOnly: true,
				},
				// ...an override now would release that operation with the move: it fails as a
				// conflict naming it, and nothing moves...
				{
					Config:      classConfig(testEnv{e: e}, env, app, v2.PinnedReference, deny, "window_policy   = \"override\"\n  override_reason = \"INC-41 too early\""),
					ExpectError: regexp.MustCompile(`(?s)Sync conflict: an operation started by .* is held by the deployment window.*nothing was moved`),
				},
				{
					PreConfig: func() {
						live := appLive(t, e, app)
						if p, _, _ := unstructured.NestedString(live.Object, "spec", "project"); p != env {
							t.Fatalf("application in project %q after the refused override, want %q", p, env)
						}
						if op := argocd.StatusOf(live).LastOperation; live.Object["operation"] == nil || op == nil || !strings.Contains(op.Message, "blocked by sync window") {
							t.Fatalf("the foreign operation is no longer held after the refused override: %+v", op)
						}
						if _, err := dyn.Resource(argocd.AppProjectGVR).Namespace(e.ArgoCD.Namespace).Get(ctx, argocd.OverrideProjectName(env), metav1.GetOptions{}); err == nil {
							t.Fatalf("override project %s exists after the refused override", argocd.OverrideProjectName(env))
						}
						// Take the held operation back as a user would (ferry app terminate): the
						// controller ends a terminate even behind a deny window.
						c := argocd.NewFromDynamic(dyn, e.ArgoCD.Namespace)
						if _, err := c.Terminate(ctx, app); err != nil {
							t.Fatal(err)
						}
						e.ArgoCD.WaitApplication(t, app, func(a *unstructured.Unstructured) bool {
							op := argocd.StatusOf(a).LastOperation
							return a.Object["operation"] == nil && op != nil && op.Phase != "Running" && op.Phase != "Terminating"
						}, time.Minute)
					},
					Config:   classConfig(testEnv{e: e}, env, app, v1.PinnedReference, deny, ""),
					PlanOnly: true,
					// The refused override recorded its arguments: the plan is not empty.
					ExpectNonEmptyPlan: true,
				},
				// ...and an override with a reason deploys v2, recording the reason.
				{
					Config: classConfig(testEnv{e: e}, env, app, v2.PinnedReference, deny, "window_policy   = \"override\"\n  override_reason = \"INC-42 hotfix\""),
					ConfigStateChecks: []statecheck.StateCheck{
						statecheck.ExpectKnownValue("ferry_application.app", tfjsonpath.New("synced_revision"), knownvalue.StringExact(v2.Digest)),
					},
					Check: func(*terraform.State) error {
						live := appLive(t, e, app)
						if got := live.GetAnnotations()[argocd.AnnotationOverride]; got != "INC-42 hotfix" {
							return fmt.Errorf("override annotation = %q", got)
						}
						opState, _, _ := unstructured.NestedMap(live.Object, "status", "operationState")
						info, _, _ := unstructured.NestedSlice(opState, "operation", "info")
						if !strings.Contains(fmt.Sprint(info), "INC-42 hotfix") {
							return fmt.Errorf("operation info %v lacks the override reason", info)
						}
						if p, _, _ := unstructured.NestedString(live.Object, "spec", "project"); p != env {
							return fmt.Errorf("application left in project %q after the override, want %q", p, env)
						}
						return nil
					},
				},
				// An override with wait = false leaves no bypass either: back in its project, the
				// override project deleted, when the apply returns.
				{
					Config: classConfig(testEnv{e: e}, env, app, v1.PinnedReference, deny, "window_policy   = \"override\"\n  override_reason = \"INC-43 rollback\"\n  wait = false"),
					Check: func(*terraform.State) error {
						live := appLive(t, e, app)
						if p, _, _ := unstructured.NestedString(live.Object, "spec", "project"); p != env {
							return fmt.Errorf("application left in project %q after the override with wait = false, want %q", p, env)
						}
						if op := argocd.StatusOf(live).LastOperation; op == nil || op.Phase != "Succeeded" {
							return fmt.Errorf("last operation after the override with wait = false = %+v, want Succeeded", op)
						}
						if _, err := dyn.Resource(argocd.AppProjectGVR).Namespace(e.ArgoCD.Namespace).Get(ctx, argocd.OverrideProjectName(env), metav1.GetOptions{}); err == nil {
							return fmt.Errorf("override project %s still exists after the override", argocd.OverrideProjectName(env))
						}
						return nil
					},
				},
				// The leftover of a killed override (the override project, the application in it)
				// is repaired by the next refresh: the plan is empty and the application is back.
				{
					PreConfig: func() {
						p, err := dyn.Resource(argocd.AppProjectGVR).Namespace(e.ArgoCD.Namespace).Get(ctx, env, metav1.GetOptions{})
						if err != nil {
							t.Fatal(err)
						}
						ov := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject",
							"metadata": map[string]any{"name": argocd.OverrideProjectName(env), "namespace": e.ArgoCD.Namespace}, "spec": p.Object["spec"]}}
						delete(ov.Object["spec"].(map[string]any), "syncWindows")
						if _, err := dyn.Resource(argocd.AppProjectGVR).Namespace(e.ArgoCD.Namespace).Create(ctx, ov, metav1.CreateOptions{}); err != nil {
							t.Fatal(err)
						}
						patch := []byte(`{"spec":{"project":"` + argocd.OverrideProjectName(env) + `"}}`)
						if _, err := dyn.Resource(argocd.ApplicationGVR).Namespace(e.ArgoCD.Namespace).Patch(ctx, app, k8stypes.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
							t.Fatal(err)
						}
					},
					Config:   classConfig(testEnv{e: e}, env, app, v1.PinnedReference, deny, "window_policy   = \"override\"\n  override_reason = \"INC-43 rollback\"\n  wait = false"),
					PlanOnly: true,
				},
				{
					PreConfig: func() {
						if p, _, _ := unstructured.NestedString(appLive(t, e, app).Object, "spec", "project"); p != env {
							t.Errorf("application in project %q after the plan, want it repaired to %q", p, env)
						}
						if _, err := dyn.Resource(argocd.AppProjectGVR).Namespace(e.ArgoCD.Namespace).Get(ctx, argocd.OverrideProjectName(env), metav1.GetOptions{}); err == nil {
							t.Errorf("override project %s still exists after the repair", argocd.OverrideProjectName(env))
						}
					},
					Config:   classConfig(testEnv{e: e}, env, app, v1.PinnedReference, deny, "window_policy   = \"override\"\n  override_reason = \"INC-43 rollback\"\n  wait = false"),
					PlanOnly: true,
				},
			},
		})
	})
}

// TestAccApplicationOverrideAuditRecord: the audit record of an override (the
// ferry.dev/last-override annotation: reason, caller, window, revision) is still on the
// Application after two further plain applies, once the window is gone, and the
// FerryWindowOverride Event names the override.
func TestAccApplicationOverrideAuditRecord(t *testing.T) {
	e := sharedEnv.Get(t)
	env := uniqueName(t, "env")
	app := uniqueName(t, "app")
	v1 := pushRelease(t, e, "apps/"+app, map[string]string{"cm.yaml": configMap("a", "v1")})
	v2 := pushRelease(t, e, "apps/"+app, map[string]string{"cm.yaml": configMap("a", "v2")})
	deny := "deployment_window {\n    kind        = \"deny\"\n    schedule    = \"* * * * *\"\n    duration    = \"1h\"\n    description = \"audit freeze\"\n  }"
	ctx := context.Background()
	dyn := e.Cluster.Dynamic(t)
	var overrideRID string
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testProviderFactories,
		Steps: []resource.TestStep{
			{Config: classConfig(testEnv{e: e}, env, app, v1.PinnedReference, "", "")},
			{
				Config: classConfig(testEnv{e: e}, env, app, v2.PinnedReference, deny, "window_policy   = \"override\"\n  override_reason = \"INC-44 audit\""),
				Check: func(*terraform.State) error {
					op := argocd.StatusOf(appLive(t, e, app)).LastOperation
					if op == nil {
						return fmt.Errorf("no operation after the override")
					}
					overrideRID = op.RequestID
					return nil
				},
			},
			// The window is gone; two plain applies (v1, then v2 again) write the Application.
			{Config: classConfig(testEnv{e: e}, env, app, v1.PinnedReference, "", "")},
			{
				Config: classConfig(testEnv{e: e}, env, app, v2.PinnedReference, "", ""),
				Check: func(*terraform.State) error {
					live := appLive(t, e, app)
					if op := argocd.StatusOf(live).LastOperation; op == nil || op.RequestID == overrideRID {
						return fmt.Errorf("last operation %+v, want a plain sync after the override", op)
					}
					rec := argocd.LastOverrideOf(live)
					if rec == nil || rec.Reason != "INC-44 audit" || rec.Revision != v2.Digest || rec.RequestID != overrideRID || rec.By == "" ||
						!strings.Contains(rec.Window, `("audit freeze")`) {
						return fmt.Errorf("audit record after two plain applies = %+v (annotation %q)", rec, live.GetAnnotations()[argocd.AnnotationLastOverride])
					}
					evs, err := dyn.Resource(argocd.EventGVR).Namespace(e.ArgoCD.Namespace).List(ctx, metav1.ListOptions{
						FieldSelector: "involvedObject.name=" + app + ",reason=" + argocd.EventReasonOverride})
					if err != nil {
						return err
					}
					if len(evs.Items) != 1 || !strings.Contains(fmt.Sprint(evs.Items[0].Object["message"]), "INC-44 audit") {
						return fmt.Errorf("%d %s Events, want 1 naming the reason", len(evs.Items), argocd.EventReasonOverride)
					}
					return nil
				},
			},
		},
	})
}

// TestAccApplicationConflict: ferry never overwrites a running operation.
func TestAccApplicationConflict(t *testing.T) {
	e := sharedEnv.Get(t)
	env := uniqueName(t, "env")
	app := uniqueName(t, "app")
	stuck := pushRelease(t, e, "apps/"+app, map[string]string{"deploy.yaml": fmt.Sprintf(neverReadyDeployment, ""), "later.yaml": laterWave})
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testProviderFactories,
		Steps: []resource.TestStep{
			{Config: classConfig(testEnv{e: e}, env, app, stuck.PinnedReference, "", "wait = false")},
			{
				Config:      classConfig(testEnv{e: e}, env, app, stuck.PinnedReference, "", "wait = false\n  stuck_after = \"6m\""),
				ExpectError: regexp.MustCompile(`(?s)Sync conflict: an operation started by ferry at \S+ is running.*never overwrites`),
			},
		},
	})
}

// TestAccApplicationOrdering: infrastructure (terraform_data) → environment → application with
// depends_on; the sync starts only after the infrastructure exists (asserted by timestamps).
func TestAccApplicationOrdering(t *testing.T) {
	e := sharedEnv.Get(t)
	env := uniqueName(t, "env")
	app := uniqueName(t, "app")
	v1 := pushRelease(t, e, "apps/"+app, map[string]string{"cm.yaml": configMap("a", "v1")})
	stamp := filepath.Join(t.TempDir(), "infra-created")
	cfg := testenv.ProviderConfig(e) + fmt.Sprintf(`
resource "terraform_data" "infra" {
  provisioner "local-exec" {
    command = "sleep 2; date -u +%%Y-%%m-%%dT%%H:%%M:%%SZ > %[7]s"
  }
}

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
  depends_on = [terraform_data.infra]
}

resource "ferry_application" "app" {
  name        = %[5]q
  environment = ferry_environment.env.project
  bundle      = %[6]q
  namespace   = %[1]q
  sync_options {
    create_namespace = true
  }
  depends_on = [terraform_data.infra]
}
`, env, e.Registry.Addr, e.ArgoCD.ClusterServer, e.Cluster.Token, app, v1.PinnedReference, stamp)
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testProviderFactories,
		ExternalProviders:        map[string]resource.ExternalProvider{},
		Steps: []resource.TestStep{{
			Config: cfg,
			Check: func(*terraform.State) error {
				raw, err := os.ReadFile(stamp)
				if err != nil {
					return fmt.Errorf("infrastructure never ran: %v", err)
				}
				infra, err := time.Parse(time.RFC3339, strings.TrimSpace(string(raw)))
				if err != nil {
					return err
				}
				op := argocd.StatusOf(appLive(t, e, app)).LastOperation
				started, err := time.Parse(time.RFC3339, op.StartedAt)
				if err != nil {
					return err
				}
				if started.Before(infra) {
					return fmt.Errorf("sync started at %s, before the infrastructure was created at %s", started, infra)
				}
				return nil
			},
		}},
	})
}

// TestAccApplicationAutoSync: with auto_sync = true ferry turns on Argo CD's automated sync and
// waits for it to reach each bundle digest, without starting an operation of its own.
func TestAccApplicationAutoSync(t *testing.T) {
	e, env, app, v1, v2 := twoReleases(t)
	addr := "ferry_application.app"
	apps := e.Cluster.Dynamic(t).Resource(argocd.ApplicationGVR).Namespace(e.ArgoCD.Namespace)
	automated := func(digest string) resource.TestCheckFunc {
		return func(*terraform.State) error {
			a, err := apps.Get(context.Background(), app, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if _, found, _ := unstructured.NestedMap(a.Object, "spec", "syncPolicy", "automated"); !found {
				return fmt.Errorf("spec.syncPolicy.automated missing: %v", a.Object["spec"])
			}
			if enabled, found, _ := unstructured.NestedBool(a.Object, "spec", "syncPolicy", "automated", "enabled"); found && !enabled {
				return fmt.Errorf("spec.syncPolicy.automated.enabled = false, want automated sync on")
			}
			if by, _, _ := unstructured.NestedBool(a.Object, "status", "operationState", "operation", "initiatedBy", "automated"); !by {
				return fmt.Errorf("the last operation was not started by Argo CD's automated sync: %v", a.Object["status"].(map[string]any)["operationState"])
			}
			if rev, _, _ := unstructured.NestedString(a.Object, "status", "sync", "revision"); rev != digest {
				return fmt.Errorf("synced revision = %s, want %s", rev, digest)
			}
			return nil
		}
	}
	step := func(r *bundle.PushResult) resource.TestStep {
		return resource.TestStep{
			Config: appConfig(e, env, app, r.PinnedReference, "  auto_sync = true\n"),
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("sync_status"), knownvalue.StringExact("Synced")),
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("health_status"), knownvalue.StringExact("Healthy")),
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("synced_revision"), knownvalue.StringExact(r.Digest)),
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("auto_sync"), knownvalue.Bool(true)),
			},
			Check: automated(r.Digest),
		}
	}
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testProviderFactories,
		Steps: []resource.TestStep{
			step(v1),
			step(v2),
			{Config: appConfig(e, env, app, v2.PinnedReference, "  auto_sync = true\n"), ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}}},
		},
	})
}

// TestAccApplicationRetry: the retry block becomes Argo CD's own retry policy, copied into the
// operation ferry requests; a sync that keeps failing ends after Argo CD's retries, with the count.
func TestAccApplicationRetry(t *testing.T) {
	e := sharedEnv.Get(t)
	env := uniqueName(t, "env")
	app := uniqueName(t, "app")
	// A ConfigMap with an invalid name: the API server rejects it at every attempt.
	bad := pushRelease(t, e, "apps/"+app, map[string]string{"cm.yaml": configMap("Not_A_Valid_Name", "v1")})
	good := pushRelease(t, e, "apps/"+app, map[string]string{"cm.yaml": configMap("settings", "v1")})
	retry := `  retry {
    limit                = 2
    backoff_duration     = "1s"
    backoff_factor       = 2
    backoff_max_duration = "3s"
  }
`
	apps := e.Cluster.Dynamic(t).Resource(argocd.ApplicationGVR).Namespace(e.ArgoCD.Namespace)
	addr := "ferry_application.app"
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testProviderFactories,
		Steps: []resource.TestStep{
			{
				Config:      appConfig(e, env, app, bad.PinnedReference, retry),
				ExpectError: regexp.MustCompile(`(?s)Sync failed.*Not_A_Valid_Name`),
			},
			{
				// Argo CD ran the failed operation with the retry policy ferry copied in, and retried it.
				PreConfig: func() {
					a, err := apps.Get(context.Background(), app, metav1.GetOptions{})
					if err != nil {
						t.Fatal(err)
					}
					limit, _, _ := unstructured.NestedInt64(a.Object, "status", "operationState", "operation", "retry", "limit")
					backoff, _, _ := unstructured.NestedString(a.Object, "status", "operationState", "operation", "retry", "backoff", "duration")
					count, _, _ := unstructured.NestedInt64(a.Object, "status", "operationState", "retryCount")
					if limit != 2 || backoff != "1s" || count != 2 {
						t.Fatalf("failed operation: retry limit %d backoff %q retryCount %d, want 2, 1s, 2", limit, backoff, count)
					}
				},
				Config: appConfig(e, env, app, good.PinnedReference, retry),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("synced_revision"), knownvalue.StringExact(good.Digest)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("retry").AtMapKey("limit"), knownvalue.Int64Exact(2)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("retry").AtMapKey("backoff_max_duration"), knownvalue.StringExact("3s")),
				},
			},
			{Config: appConfig(e, env, app, good.PinnedReference, retry), ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}}},
		},
	})
}

// TestAccApplicationKustomizeHelm: the kustomize and helm blocks reach Argo CD, which renders the
// bundle's kustomize base or chart with them (the repo-server runs the real kustomize and helm).
func TestAccApplicationKustomizeHelm(t *testing.T) {
	e := sharedEnv.Get(t)
	ctx := context.Background()
	dyn := e.Cluster.Dynamic(t)
	digest := "sha256:" + strings.Repeat("ab", 32)
	tests := []struct {
		name      string
		manifests map[string]string
		extra     string
		check     func(ns string) error
	}{
		{
			name: "kustomize",
			manifests: map[string]string{
				"kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- cm.yaml\n- deploy.yaml\n",
				"cm.yaml":            configMap("settings", "base"),
				"deploy.yaml": `apiVersion: apps/v1
kind: Deployment
metadata: {name: api}
spec:
  replicas: 0
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec: {containers: [{name: api, image: "registry.example.com/api:1"}]}
`,
			},
			extra: fmt.Sprintf(`  kustomize {
    name_prefix   = "acme-"
    name_suffix   = "-v2"
    common_labels = { customer = "acme" }
    images        = ["registry.example.com/api=registry.example.com/api@%s"]
    patches = [<<-EOT
      apiVersion: v1
      kind: ConfigMap
      metadata:
        name: settings
      data:
        value: patched
    EOT
    ]
  }
`, digest),
			check: func(ns string) error {
				cm, err := dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}).Namespace(ns).Get(ctx, "acme-settings-v2", metav1.GetOptions{})
				if err != nil {
					return fmt.Errorf("the ConfigMap renamed by name_prefix/name_suffix: %w", err)
				}
				if v, _, _ := unstructured.NestedString(cm.Object, "data", "value"); v != "patched" {
					return fmt.Errorf("ConfigMap value = %q, want the patch's", v)
				}
				if cm.GetLabels()["customer"] != "acme" {
					return fmt.Errorf("ConfigMap labels = %v, want customer=acme", cm.GetLabels())
				}
				d, err := dyn.Resource(schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}).Namespace(ns).Get(ctx, "acme-api-v2", metav1.GetOptions{})
				if err != nil {
					return err
				}
				cs, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
				if img := cs[0].(map[string]any)["image"]; img != "registry.example.com/api@"+digest {
					return fmt.Errorf("Deployment image = %v, want the kustomize images override", img)
				}
				return nil
			},
		},
		{
			name: "helm",
			manifests: map[string]string{
				"Chart.yaml":        "apiVersion: v2\nname: shop\nversion: 0.1.0\n",
				"values.yaml":       "greeting: hello\nreplicas: 1\n",
				"templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  greeting: \"{{ .Values.greeting }}\"\n  replicas: \"{{ .Values.replicas }}\"\n",
			},
			extra: "  helm {\n    values = \"greeting: bonjour\\n\"\n  }\n",
			check: func(ns string) error {
				cm, err := dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}).Namespace(ns).Get(ctx, "settings", metav1.GetOptions{})
				if err != nil {
					return err
				}
				g, _, _ := unstructured.NestedString(cm.Object, "data", "greeting")
				r, _, _ := unstructured.NestedString(cm.Object, "data", "replicas")
				if g != "bonjour" || r != "1" {
					return fmt.Errorf("ConfigMap greeting %q replicas %q, want bonjour (values) and 1 (the chart's default)", g, r)
				}
				return nil
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := uniqueName(t, "env")
			app := uniqueName(t, "app")
			rel := pushRelease(t, e, "apps/"+app, tt.manifests)
			cfg := appConfig(e, env, app, rel.PinnedReference, tt.extra)
			resource.UnitTest(t, resource.TestCase{
				ProtoV6ProviderFactories: testProviderFactories,
				Steps: []resource.TestStep{
					{
						Config: cfg,
						ConfigStateChecks: []statecheck.StateCheck{
							statecheck.ExpectKnownValue("ferry_application.app", tfjsonpath.New("sync_status"), knownvalue.StringExact("Synced")),
							statecheck.ExpectKnownValue("ferry_application.app", tfjsonpath.New("health_status"), knownvalue.StringExact("Healthy")),
						},
						Check: func(*terraform.State) error { return tt.check(env) },
					},
					{Config: cfg, ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}}},
				},
			})
		})
	}
}

package provider

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/config"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	k8stypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	"github.com/ferry-dev/terraform-provider-ferry/internal/argocd"
	"github.com/ferry-dev/terraform-provider-ferry/internal/testenv"
)

type envConfig struct {
	name    string
	windows string // deployment_window blocks
	frozen  bool
	extra   string
}

func environmentConfig(e *testenv.Env, c envConfig) string {
	return testenv.ProviderConfig(e) + fmt.Sprintf(`
resource "ferry_environment" "acme" {
  name                = %[1]q
  description         = "ACME Corp production"
  labels              = { customer = "acme" }
  namespaces          = ["%[1]s-shop", "%[1]s-jobs"]
  source_repositories = ["oci://%[2]s/shop/*"]
  cluster_resources   = ["Namespace"]
  frozen              = %[5]t

  cluster {
    server                  = %[3]q
    bearer_token_wo         = %[4]q
    bearer_token_wo_version = 1
    insecure                = true
  }

  registry_credentials {
    url        = "oci://%[2]s/shop"
    username   = "puller"
    password   = "s3cret"
    plain_http = true
  }
%[6]s
%[7]s
}
`, c.name, e.Registry.Addr, e.ArgoCD.ClusterServer, e.Cluster.Token, c.frozen, c.windows, c.extra)
}

const (
	windowsV1 = `
  deployment_window {
    kind        = "allow"
    schedule    = "0 2 * * 1-5"
    duration    = "2h"
    time_zone   = "Europe/Berlin"
    description = "weekday nights"
  }
`
	windowsV2 = `
  deployment_window {
    kind        = "allow"
    schedule    = "0 3 * * *"
    duration    = "3h"
    time_zone   = "America/New_York"
    description = "every night"
  }
  deployment_window {
    kind        = "deny"
    schedule    = "0 0 24 12 *"
    duration    = "48h"
    manual_sync = true
    description = "christmas"
  }
`
)

func project(t *testing.T, e *testenv.Env, name string) *unstructured.Unstructured {
	t.Helper()
	p, err := e.Cluster.Dynamic(t).Resource(argocd.AppProjectGVR).Namespace(e.ArgoCD.Namespace).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get AppProject %s: %v", name, err)
	}
	return p
}

func checkProject(dyn dynamic.Interface, e *testenv.Env, name string, want func(p *unstructured.Unstructured) error) resource.TestCheckFunc {
	return func(*terraform.State) error {
		p, err := dyn.Resource(argocd.AppProjectGVR).Namespace(e.ArgoCD.Namespace).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		return want(p)
	}
}

func windowsOf(p *unstructured.Unstructured) []map[string]any {
	sws, _, _ := unstructured.NestedSlice(p.Object, "spec", "syncWindows")
	var out []map[string]any
	for _, w := range sws {
		out = append(out, w.(map[string]any))
	}
	return out
}

func TestAccEnvironment(t *testing.T) {
	e := sharedEnv.Get(t)
	name := uniqueName(t, "acme")
	addr := "ferry_environment.acme"
	dyn := e.Cluster.Dynamic(t)
	ns := e.ArgoCD.Namespace
	ctx := context.Background()

	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: environmentConfig(e, envConfig{name: name, windows: windowsV1}),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("project"), knownvalue.StringExact(name)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("cluster_secret"), knownvalue.StringExact("ferry-cluster-"+name)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("repository_secret"), knownvalue.StringExact("ferry-repo-"+name)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("cluster").AtMapKey("bearer_token_wo"), knownvalue.Null()),
				},
				Check: checkProject(dyn, e, name, func(p *unstructured.Unstructured) error {
					ws := windowsOf(p)
					if len(ws) != 1 || ws[0]["kind"] != "allow" || ws[0]["schedule"] != "0 2 * * 1-5" || ws[0]["duration"] != "2h" || ws[0]["timeZone"] != "Europe/Berlin" {
						return fmt.Errorf("syncWindows = %v, want the allow window", ws)
					}
					dests, _, _ := unstructured.NestedSlice(p.Object, "spec", "destinations")
					if len(dests) != 2 || dests[0].(map[string]any)["server"] != e.ArgoCD.ClusterServer {
						return fmt.Errorf("destinations = %v", dests)
					}
					if p.GetLabels()["app.kubernetes.io/managed-by"] != "ferry" || p.GetLabels()["customer"] != "acme" {
						return fmt.Errorf("labels = %v", p.GetLabels())
					}
					s, err := dyn.Resource(argocd.SecretGVR).Namespace(ns).Get(ctx, "ferry-cluster-"+name, metav1.GetOptions{})
					if err != nil {
						return err
					}
					if s.GetLabels()["argocd.argoproj.io/secret-type"] != "cluster" {
						return fmt.Errorf("cluster secret labels = %v", s.GetLabels())
					}
					return nil
				}),
			},
			{
				// Windows updated, then the environment frozen.
				Config: environmentConfig(e, envConfig{name: name, windows: windowsV2, frozen: true}),
				Check: checkProject(dyn, e, name, func(p *unstructured.Unstructured) error {
					ws := windowsOf(p)
					if len(ws) != 3 || ws[1]["kind"] != "deny" || ws[1]["manualSync"] != true || ws[2]["description"] != argocd.FrozenWindowDescription {
						return fmt.Errorf("syncWindows = %v, want allow, deny, frozen", ws)
					}
					return nil
				}),
			},
			{
				// Unfrozen.
				Config: environmentConfig(e, envConfig{name: name, windows: windowsV2}),
				Check: checkProject(dyn, e, name, func(p *unstructured.Unstructured) error {
					if ws := windowsOf(p); len(ws) != 2 {
						return fmt.Errorf("syncWindows = %v, want 2 windows after unfreezing", ws)
					}
					return nil
				}),
			},
			{
				// Drift: a window edited by hand, a destination changed, the cluster Secret deleted.
				PreConfig: func() {
					p := project(t, e, name)
					ws, _, _ := unstructured.NestedSlice(p.Object, "spec", "syncWindows")
					ws[0].(map[string]any)["schedule"] = "0 12 * * *"
					unstructured.SetNestedSlice(p.Object, ws, "spec", "syncWindows")
					dests, _, _ := unstructured.NestedSlice(p.Object, "spec", "destinations")
					dests[1].(map[string]any)["namespace"] = "*"
					unstructured.SetNestedSlice(p.Object, dests, "spec", "destinations")
					if _, err := dyn.Resource(argocd.AppProjectGVR).Namespace(ns).Update(ctx, p, metav1.UpdateOptions{FieldManager: "kubectl-edit"}); err != nil {
						t.Fatal(err)
					}
					if err := dyn.Resource(argocd.SecretGVR).Namespace(ns).Delete(ctx, "ferry-cluster-"+name, metav1.DeleteOptions{}); err != nil {
						t.Fatal(err)
					}
				},
				Config: environmentConfig(e, envConfig{name: name, windows: windowsV2}),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)},
				},
				Check: checkProject(dyn, e, name, func(p *unstructured.Unstructured) error {
					ws := windowsOf(p)
					if ws[0]["schedule"] != "0 3 * * *" {
						return fmt.Errorf("hand-edited window not restored: %v", ws[0])
					}
					dests, _, _ := unstructured.NestedSlice(p.Object, "spec", "destinations")
					if dests[1].(map[string]any)["namespace"] != name+"-jobs" {
						return fmt.Errorf("destination not restored: %v", dests)
					}
					if _, err := dyn.Resource(argocd.SecretGVR).Namespace(ns).Get(ctx, "ferry-cluster-"+name, metav1.GetOptions{}); err != nil {
						return fmt.Errorf("cluster Secret not restored: %v", err)
					}
					return nil
				}),
			},
			{
				Config:           environmentConfig(e, envConfig{name: name, windows: windowsV2}),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			},
			{
				ResourceName:                         addr,
				ImportState:                          true,
				ImportStateId:                        name,
				ImportStateVerify:                    true,
				ImportStateVerifyIdentifierAttribute: "name",
				// Secrets are never read back into state.
				ImportStateVerifyIgnore: []string{"cluster.bearer_token_wo_version", "registry_credentials.password"},
			},
			{
				// Destroy is refused while an Application of the environment uses the project (one
				// carrying the environment's label, as every Application ferry writes does: the check
				// is a list scoped by it, never a list of every Application).
				PreConfig: func() {
					app := &unstructured.Unstructured{Object: map[string]any{
						"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
						"metadata": map[string]any{"name": name + "-app", "namespace": ns, "labels": map[string]any{argocd.LabelEnvironment: name}},
						"spec": map[string]any{"project": name,
							"source":      map[string]any{"repoURL": "oci://" + e.Registry.Addr + "/shop/x", "targetRevision": "1", "path": "."},
							"destination": map[string]any{"server": e.ArgoCD.ClusterServer, "namespace": name + "-shop"}},
					}}
					if _, err := dyn.Resource(argocd.ApplicationGVR).Namespace(ns).Create(ctx, app, metav1.CreateOptions{}); err != nil {
						t.Fatal(err)
					}
				},
				Config:      environmentConfig(e, envConfig{name: name, windows: windowsV2}),
				Destroy:     true,
				ExpectError: regexp.MustCompile(`(?s)Environment Still In Use.*` + regexp.QuoteMeta(name+"-app")),
			},
			{
				PreConfig: func() {
					if err := dyn.Resource(argocd.ApplicationGVR).Namespace(ns).Delete(ctx, name+"-app", metav1.DeleteOptions{}); err != nil {
						t.Fatal(err)
					}
				},
				Config: environmentConfig(e, envConfig{name: name, windows: windowsV2}),
			},
			{
				// The AppProject deleted out of band: the environment leaves state and is planned again.
				PreConfig: func() {
					if err := dyn.Resource(argocd.AppProjectGVR).Namespace(ns).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
						t.Fatal(err)
					}
				},
				Config:             environmentConfig(e, envConfig{name: name, windows: windowsV2}),
				PlanOnly:           true,
				ExpectNonEmptyPlan: true,
			},
		},
		CheckDestroy: func(*terraform.State) error {
			for _, n := range []string{"ferry-cluster-" + name, "ferry-repo-" + name} {
				if _, err := dyn.Resource(argocd.SecretGVR).Namespace(ns).Get(ctx, n, metav1.GetOptions{}); err == nil {
					return fmt.Errorf("secret %s still exists after destroy", n)
				}
			}
			if _, err := dyn.Resource(argocd.AppProjectGVR).Namespace(ns).Get(ctx, name, metav1.GetOptions{}); err == nil {
				return fmt.Errorf("AppProject %s still exists after destroy", name)
			}
			return nil
		},
	})
}

// exactError matches msg exactly, allowing for Terraform's line wrapping of diagnostics.
func exactError(msg string) *regexp.Regexp {
	parts := strings.Fields(msg)
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	return regexp.MustCompile(strings.Join(parts, `\s+`))
}

func TestAccEnvironmentInvalid(t *testing.T) {
	e := sharedEnv.Get(t)
	win := func(kind, schedule, duration, tz string) string {
		return fmt.Sprintf(`
  deployment_window {
    kind      = %q
    schedule  = %q
    duration  = %q
    time_zone = %q
  }
`, kind, schedule, duration, tz)
	}
	tests := []struct {
		name, windows, extra, envName string
		want                          string
	}{
		{"bad cron", win("allow", "0 25 * * *", "1h", "UTC"), "", "", `deployment_window[0].schedule: cannot parse schedule '0 25 * * *': end of range (25) above maximum (23): 25`},
		{"six fields", win("allow", "0 0 2 * * *", "1h", "UTC"), "", "", `deployment_window[0].schedule: cannot parse schedule '0 0 2 * * *': expected exactly 5 fields, found 6: [0 0 2 * * *]`},
		{"descriptor", win("allow", "@daily", "1h", "UTC"), "", "", `deployment_window[0].schedule: cannot parse schedule '@daily': parser does not accept descriptors: @daily`},
		{"tz prefix", win("allow", "TZ=UTC 0 2 * * *", "1h", "UTC"), "", "", `deployment_window[0].schedule: cannot parse schedule 'TZ=UTC 0 2 * * *': a TZ= or CRON_TZ= prefix would shift the schedule a second time; set time_zone instead`},
		{"unknown zone", win("allow", "0 2 * * *", "1h", "Europe/Berln"), "", "", `deployment_window[0].time_zone: unknown time zone "Europe/Berln"`},
		{"negative duration", win("allow", "0 2 * * *", "-1h", "UTC"), "", "", `deployment_window[0].duration: duration '-1h' must be positive (a window with no duration is never active)`},
		{"zero duration", win("allow", "0 2 * * *", "0s", "UTC"), "", "", `deployment_window[0].duration: duration '0s' must be positive (a window with no duration is never active)`},
		{"day unit", win("allow", "0 2 * * *", "1d", "UTC"), "", "", `deployment_window[0].duration: cannot parse duration '1d': time: unknown unit "d" in duration "1d" (there is no "d" unit: write days as hours, e.g. "24h")`},
		{"bad kind", win("maybe", "0 2 * * *", "1h", "UTC"), "", "", `Attribute deployment_window[0].kind value must be one of: ["allow" "deny"], got: "maybe"`},
		{"never fires", win("allow", "0 0 30 2 *", "1h", "UTC"), "", "", `deployment_window[0].schedule: schedule '0 0 30 2 *' never fires: no date matches its day-of-month and month fields (Argo CD would treat the window as always active)`},
		{"duplicate", win("deny", "0 2 * * *", "1h", "UTC") + win("deny", "0 2 * * *", "1h", "UTC"), "", "", `deployment_window[1]: window 'deny':'0 2 * * *':'1h' already exists, update or edit (same kind, schedule and duration as deployment_window[0])`},
		{"invalid name", "", "", "Acme_Prod", `Attribute name must be a DNS label: 1-63 lowercase letters, digits and '-', starting and ending with a letter or digit, got: Acme_Prod`},
		{"long description", fmt.Sprintf(`
  deployment_window {
    kind        = "deny"
    schedule    = "0 2 * * *"
    duration    = "1h"
    description = %q
  }
`, strings.Repeat("x", 256)), "", "", `deployment_window[0].description: description must not exceed 255 characters (got 256 bytes)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := tt.envName
			if name == "" {
				name = "bad-input"
			}
			resource.UnitTest(t, resource.TestCase{
				ProtoV6ProviderFactories: testProviderFactories,
				Steps: []resource.TestStep{{
					Config:      environmentConfig(e, envConfig{name: name, windows: tt.windows, extra: tt.extra}),
					PlanOnly:    true,
					ExpectError: exactError(tt.want),
				}},
			})
		})
	}
}

// TestAccEnvironmentDynamicWindows builds the windows with a dynamic block over values that are
// unknown at validation (a variable) and at plan (another resource's output), as a per-customer
// module does with its list of windows.
func TestAccEnvironmentDynamicWindows(t *testing.T) {
	t.Parallel()
	e := sharedEnv.Get(t)
	name := uniqueName(t, "env")
	windows := `
  dynamic "deployment_window" {
    for_each = terraform_data.windows.output == null ? [] : terraform_data.windows.output
    content {
      kind        = deployment_window.value.kind
      schedule    = deployment_window.value.schedule
      duration    = deployment_window.value.duration
      description = deployment_window.value.description
    }
  }
`
	cfg := func() string {
		return environmentConfig(e, envConfig{name: name, windows: windows}) + `
variable "windows" {
  type = list(object({ kind = string, schedule = string, duration = string, description = string }))
}

resource "terraform_data" "windows" {
  input = var.windows
}
`
	}
	vars := func(n int) config.Variables {
		var ws []config.Variable
		for i := range n {
			ws = append(ws, config.ObjectVariable(map[string]config.Variable{
				"kind": config.StringVariable("deny"), "schedule": config.StringVariable(fmt.Sprintf("0 0 %d 12 *", 24+i)),
				"duration": config.StringVariable("24h"), "description": config.StringVariable(fmt.Sprintf("holiday %d", i)),
			}))
		}
		return config.Variables{"windows": config.ListVariable(ws...)}
	}
	addr := "ferry_environment.acme"
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: cfg(), ConfigVariables: vars(2),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("deployment_window").AtSliceIndex(1).AtMapKey("schedule"), knownvalue.StringExact("0 0 25 12 *")),
				},
			},
			{Config: cfg(), ConfigVariables: vars(2), PlanOnly: true},
			{
				Config: cfg(), ConfigVariables: vars(0),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("deployment_window"), knownvalue.ListExact([]knownvalue.Check{})),
				},
			},
		},
	})
}

// secretData returns the decoded data of the Secret name in Argo CD's namespace.
func secretData(dyn dynamic.Interface, e *testenv.Env, name string) (map[string]string, error) {
	s, err := dyn.Resource(argocd.SecretGVR).Namespace(e.ArgoCD.Namespace).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	enc, _, _ := unstructured.NestedStringMap(s.Object, "data")
	out := map[string]string{}
	for k, v := range enc {
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			return nil, fmt.Errorf("secret %s: data[%s]: %w", name, k, err)
		}
		out[k] = string(b)
	}
	return out, nil
}

// checkSecretData checks that the Secret name holds exactly want; the value of the key "config"
// is compared as JSON.
func checkSecretData(dyn dynamic.Interface, e *testenv.Env, name string, want map[string]string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		got, err := secretData(dyn, e, name)
		if err != nil {
			return err
		}
		if cfg, ok := got["config"]; ok {
			var g, w any
			if err := json.Unmarshal([]byte(cfg), &g); err != nil {
				return fmt.Errorf("secret %s: config: %w", name, err)
			}
			json.Unmarshal([]byte(want["config"]), &w)
			if reflect.DeepEqual(g, w) {
				got["config"] = want["config"]
			}
		}
		if !maps.Equal(got, want) {
			return fmt.Errorf("secret %s data = %v, want exactly %v", name, got, want)
		}
		return nil
	}
}

// secretsConfig is an environment whose cluster and registry_credentials blocks end with the
// given lines.
func secretsConfig(e *testenv.Env, name, cluster, credentials string) string {
	return testenv.ProviderConfig(e) + fmt.Sprintf(`
resource "ferry_environment" "acme" {
  name                = %[1]q
  source_repositories = ["oci://%[2]s/shop/*"]

  cluster {
    server = %[3]q
%[4]s
  }

  registry_credentials {
    url = "oci://%[2]s/shop"
%[5]s
  }
}
`, name, e.Registry.Addr, e.ArgoCD.ClusterServer, cluster, credentials)
}

// TestAccEnvironmentSecretKeysToggle turns every key ferry writes into the repository and cluster
// Secrets on, off and on again (plain_http, username and password, the bearer token, the CA) and
// checks that each Secret holds exactly what the configuration says every time: a key ferry no
// longer writes is removed, not left for Argo CD to read.
func TestAccEnvironmentSecretKeysToggle(t *testing.T) {
	t.Parallel()
	e := sharedEnv.Get(t)
	dyn := e.Cluster.Dynamic(t)
	name := uniqueName(t, "env")
	repoURL := "oci://" + e.Registry.Addr + "/shop"
	on := secretsConfig(e, name, fmt.Sprintf("    insecure = true\n    bearer_token_wo = %q\n    bearer_token_wo_version = 1", e.Cluster.Token),
		"    plain_http = true\n    username = \"puller\"\n    password = \"s3cret\"")
	off := secretsConfig(e, name, fmt.Sprintf("    insecure = false\n    ca_data = %q", e.Cluster.CAData),
		"    plain_http = false")
	repoOn := map[string]string{"type": "oci", "url": repoURL, "project": name, "username": "puller", "password": "s3cret", "insecureOCIForceHttp": "true"}
	repoOff := map[string]string{"type": "oci", "url": repoURL, "project": name}
	cluster := func(config string) map[string]string {
		return map[string]string{"name": name, "server": e.ArgoCD.ClusterServer, "project": name, "config": config}
	}
	clusterOn := cluster(fmt.Sprintf(`{"tlsClientConfig": {"insecure": true}, "bearerToken": %q}`, e.Cluster.Token))
	clusterOff := cluster(fmt.Sprintf(`{"tlsClientConfig": {"insecure": false, "caData": %q}}`, base64.StdEncoding.EncodeToString(e.Cluster.CAData)))
	check := func(repo, cluster map[string]string) resource.TestCheckFunc {
		return resource.ComposeAggregateTestCheckFunc(
			checkSecretData(dyn, e, argocd.RepositorySecretName(name), repo),
			checkSecretData(dyn, e, argocd.ClusterSecretName(name), cluster))
	}
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testProviderFactories,
		Steps: []resource.TestStep{
			{Config: on, Check: check(repoOn, clusterOn)},
			{Config: off, Check: check(repoOff, clusterOff)},
			{Config: on, Check: check(repoOn, clusterOn)},
		},
	})
}

// TestAccEnvironmentSecretsFromStringData: an earlier ferry applied the Secrets' keys through
// stringData, which leaves the keys in data owned by nobody; turning plain_http off must still
// remove insecureOCIForceHttp, while a key another field manager wrote stays.
func TestAccEnvironmentSecretsFromStringData(t *testing.T) {
	t.Parallel()
	e := sharedEnv.Get(t)
	dyn := e.Cluster.Dynamic(t)
	ctx := context.Background()
	name := uniqueName(t, "env")
	repo := argocd.RepositorySecretName(name)
	repoURL := "oci://" + e.Registry.Addr + "/shop"
	credentials := func(plainHTTP bool) string {
		return fmt.Sprintf("    plain_http = %t\n    username = \"puller\"\n    password = \"s3cret\"", plainHTTP)
	}
	cluster := fmt.Sprintf("    insecure = true\n    bearer_token_wo = %q", e.Cluster.Token)
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testProviderFactories,
		Steps: []resource.TestStep{
			{Config: secretsConfig(e, name, cluster, credentials(true))},
			{
				// What ferry's apply used to send, and another manager's key.
				PreConfig: func() {
					old := &unstructured.Unstructured{Object: map[string]any{
						"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
						"metadata": map[string]any{"name": repo, "namespace": e.ArgoCD.Namespace, "labels": map[string]any{
							argocd.LabelManagedBy: argocd.ManagedByFerry, argocd.LabelEnvironment: name, argocd.LabelSecretType: "repository"}},
						"stringData": map[string]any{"type": "oci", "url": repoURL, "project": name, "username": "puller", "password": "s3cret", "insecureOCIForceHttp": "true"},
					}}
					secrets := dyn.Resource(argocd.SecretGVR).Namespace(e.ArgoCD.Namespace)
					if _, err := secrets.Apply(ctx, repo, old, metav1.ApplyOptions{FieldManager: argocd.FieldManager, Force: true}); err != nil {
						t.Fatal(err)
					}
					other := []byte(`{"data": {"note": "` + base64.StdEncoding.EncodeToString([]byte("kept")) + `"}}`)
					if _, err := secrets.Patch(ctx, repo, k8stypes.MergePatchType, other, metav1.PatchOptions{FieldManager: "kubectl-edit"}); err != nil {
						t.Fatal(err)
					}
				},
				Config: secretsConfig(e, name, cluster, credentials(false)),
				Check: checkSecretData(dyn, e, repo, map[string]string{
					"type": "oci", "url": repoURL, "project": name, "username": "puller", "password": "s3cret", "note": "kept"}),
			},
		},
	})
}

// TestAccEnvironmentPasswordWriteOnly: password_wo reaches the repository Secret and never the
// state; changing it alone plans nothing, bumping password_wo_version writes it; password and
// password_wo conflict.
func TestAccEnvironmentPasswordWriteOnly(t *testing.T) {
	t.Parallel()
	e := sharedEnv.Get(t)
	dyn := e.Cluster.Dynamic(t)
	name := uniqueName(t, "env")
	addr := "ferry_environment.acme"
	repo := argocd.RepositorySecretName(name)
	cluster := fmt.Sprintf("    insecure = true\n    bearer_token_wo = %q", e.Cluster.Token)
	writeOnly := func(password string, version int) string {
		return secretsConfig(e, name, cluster, fmt.Sprintf("    username = \"puller\"\n    password_wo = %q\n    password_wo_version = %d", password, version))
	}
	password := func(want string) resource.TestCheckFunc {
		return func(*terraform.State) error {
			data, err := secretData(dyn, e, repo)
			if err != nil {
				return err
			}
			if data["password"] != want || data["username"] != "puller" {
				return fmt.Errorf("repository Secret username %q password %q, want puller and %q", data["username"], data["password"], want)
			}
			return nil
		}
	}
	credentials := tfjsonpath.New("registry_credentials")
	notInState := func(secrets ...string) []statecheck.StateCheck {
		return []statecheck.StateCheck{
			statecheck.ExpectKnownValue(addr, credentials.AtMapKey("password"), knownvalue.Null()),
			statecheck.ExpectKnownValue(addr, credentials.AtMapKey("password_wo"), knownvalue.Null()),
			stateLacks(secrets...),
		}
	}
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: secretsConfig(e, name, cluster,
					"    username = \"puller\"\n    password = \"stored-secret\"\n    password_wo = \"wo-secret\""),
				PlanOnly:    true,
				ExpectError: exactError("Set password or password_wo, not both."),
			},
			{Config: writeOnly("first-wo-secret", 1), Check: password("first-wo-secret"), ConfigStateChecks: notInState("first-wo-secret")},
			{
				// A new value alone is not compared (Terraform keeps no write-only value to compare with).
				Config:           writeOnly("second-wo-secret", 1),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
				Check:            password("first-wo-secret"),
			},
			{
				Config: writeOnly("second-wo-secret", 2),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate), planLacks("first-wo-secret", "second-wo-secret")}},
				Check:             password("second-wo-secret"),
				ConfigStateChecks: notInState("first-wo-secret", "second-wo-secret"),
			},
			{
				// Back to password, for Terraform before 1.11: stored (sensitive) in state.
				Config: secretsConfig(e, name, cluster, "    username = \"puller\"\n    password = \"stored-secret\""),
				Check:  password("stored-secret"),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, credentials.AtMapKey("password"), knownvalue.StringExact("stored-secret")),
					statecheck.ExpectKnownValue(addr, credentials.AtMapKey("password_wo_version"), knownvalue.Null()),
					stateLacks("second-wo-secret"),
				},
			},
			{
				// Changed in the Secret by hand: the refresh marks it, without reading it into state, and the apply restores it.
				PreConfig: func() {
					patch := []byte(`{"data": {"password": "` + base64.StdEncoding.EncodeToString([]byte("hand-edited-secret")) + `"}}`)
					if _, err := dyn.Resource(argocd.SecretGVR).Namespace(e.ArgoCD.Namespace).Patch(context.Background(), repo, k8stypes.MergePatchType, patch, metav1.PatchOptions{FieldManager: "kubectl-edit"}); err != nil {
						t.Fatal(err)
					}
				},
				Config: secretsConfig(e, name, cluster, "    username = \"puller\"\n    password = \"stored-secret\""),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate), planLacks("hand-edited-secret")}},
				Check: password("stored-secret"),
			},
		},
	})
}

package provider

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	tfjson "github.com/hashicorp/terraform-json"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	acc "github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/ferry-dev/terraform-provider-ferry/internal/testenv"
)

// TestSecretAttributesSensitive: every argument that carries a secret is Sensitive, and the
// write-only ones are WriteOnly.
func TestSecretAttributesSensitive(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		r         resource.Resource
		sensitive []string // block.attribute
		writeOnly []string
	}{
		{r: NewEnvironmentResource(),
			sensitive: []string{"cluster.bearer_token", "cluster.bearer_token_wo", "registry_credentials.password", "registry_credentials.password_wo"},
			writeOnly: []string{"cluster.bearer_token_wo", "registry_credentials.password_wo"}},
		{r: NewApplicationResource(), sensitive: []string{"helm.values", "kustomize.patches"}},
	} {
		var resp resource.SchemaResponse
		tc.r.Schema(ctx, resource.SchemaRequest{}, &resp)
		attr := func(name string) schema.Attribute {
			block, a, _ := strings.Cut(name, ".")
			b, ok := resp.Schema.Blocks[block].(schema.SingleNestedBlock)
			if !ok || b.Attributes[a] == nil {
				t.Fatalf("no attribute %s", name)
			}
			return b.Attributes[a]
		}
		for _, name := range tc.sensitive {
			if !attr(name).IsSensitive() {
				t.Errorf("%s is not Sensitive", name)
			}
		}
		for _, name := range tc.writeOnly {
			if !attr(name).IsWriteOnly() {
				t.Errorf("%s is not WriteOnly", name)
			}
		}
	}
}

// TestAccSecretsNotLeaked applies an environment and a helm application with every secret ferry
// takes, each a value found nowhere else, with Terraform and the provider logging at trace level:
// no secret may appear in the log (which also holds the human-readable plans, as
// terraform-plugin-testing logs them), in a value of the plan or state that is not marked
// sensitive, and the write-only ones not in the plan or state at all. The secrets come from
// variables set in the environment, not from the configuration, which the test framework logs;
// none of the variables is sensitive, so only the provider's schema hides them.
func TestAccSecretsNotLeaked(t *testing.T) {
	e := sharedEnv.Get(t)
	random := func(what string) string {
		b := make([]byte, 12)
		rand.Read(b)
		return "leak-" + what + "-" + hex.EncodeToString(b)
	}
	password, passwordWO, helmSecret := random("password"), random("password-wo"), random("helm")
	token := e.Cluster.Token // the cluster's real token: Argo CD deploys the application with it
	logFile := filepath.Join(t.TempDir(), "terraform.log")
	t.Setenv("TF_LOG", "TRACE")
	t.Setenv("TF_ACC_LOG", "TRACE")
	t.Setenv("TF_ACC_LOG_PATH", logFile)
	t.Setenv("TF_VAR_password", password)
	t.Setenv("TF_VAR_password_wo", passwordWO)
	t.Setenv("TF_VAR_token", token)
	t.Setenv("TF_VAR_helm_values", "greeting: bonjour\napiKey: "+helmSecret+"\n")

	env, app := uniqueName(t, "env"), uniqueName(t, "app")
	rel := pushRelease(t, e, "apps/"+app, map[string]string{
		"Chart.yaml":        "apiVersion: v2\nname: shop\nversion: 0.1.0\n",
		"values.yaml":       "greeting: hello\n",
		"templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  greeting: \"{{ .Values.greeting }}\"\n",
	})
	cfg := func(cluster, credentials string) string {
		return testenv.ProviderConfig(e) + fmt.Sprintf(`
variable "password" { type = string }
variable "password_wo" {
  type      = string
  ephemeral = true
}
variable "token" { type = string }
variable "helm_values" { type = string }

resource "ferry_environment" "env" {
  name                = %[1]q
  namespaces          = [%[1]q]
  source_repositories = ["oci://%[2]s/apps/*"]
  cluster_resources   = ["Namespace"]
  cluster {
    server   = %[3]q
    insecure = true
%[4]s
  }
  registry_credentials {
    username   = "puller"
    plain_http = true
%[5]s
  }
}

resource "ferry_application" "app" {
  name        = %[6]q
  environment = ferry_environment.env.project
  bundle      = %[7]q
  namespace   = %[1]q
  sync_options {
    create_namespace = true
  }
  helm {
    values = var.helm_values
  }
}
`, env, e.Registry.Addr, e.ArgoCD.ClusterServer, cluster, credentials, app, rel.PinnedReference)
	}
	all := []string{password, passwordWO, token, helmSecret}
	checks := func(writeOnly ...string) (acc.ConfigPlanChecks, []statecheck.StateCheck) {
		return acc.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{planHides(all...), planLacks(writeOnly...)}},
			[]statecheck.StateCheck{
				stateHides(all...), stateLacks(writeOnly...),
				statecheck.ExpectKnownValue("ferry_application.app", tfjsonpath.New("health_status"), knownvalue.StringExact("Healthy")),
			}
	}
	plan1, state1 := checks(passwordWO, token)
	plan2, state2 := checks(passwordWO)
	acc.UnitTest(t, acc.TestCase{
		ProtoV6ProviderFactories: testProviderFactories,
		Steps: []acc.TestStep{
			{
				// password (stored, sensitive) and bearer_token_wo.
				Config:           cfg("    bearer_token_wo = var.token", "    password = var.password"),
				ConfigPlanChecks: plan1, ConfigStateChecks: state1,
				Check: checkSecretData(e.Cluster.Dynamic(t), e, "ferry-repo-"+env, map[string]string{
					"type": "oci", "url": "oci://" + e.Registry.Addr + "/apps/", "project": env, "username": "puller", "password": password, "insecureOCIForceHttp": "true"}),
			},
			{
				// password_wo and bearer_token (stored, sensitive).
				Config:           cfg("    bearer_token = var.token", "    password_wo = var.password_wo\n    password_wo_version = 1"),
				ConfigPlanChecks: plan2, ConfigStateChecks: state2,
				Check: func(*terraform.State) error {
					data, err := secretData(e.Cluster.Dynamic(t), e, "ferry-repo-"+env)
					if err == nil && data["password"] != passwordWO {
						err = fmt.Errorf("repository Secret password is not password_wo's")
					}
					return err
				},
			},
		},
	})

	log, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	// The log must hold what the test claims to search: the provider's own trace lines and
	// Terraform's human-readable plans.
	for _, want := range []string{"Applying environment", "sdk.framework", "Created plan with changes", "(sensitive value)"} {
		if !strings.Contains(string(log), want) {
			t.Fatalf("the trace log %s does not contain %q; the test would not see a leak", logFile, want)
		}
	}
	for _, s := range all {
		if i := strings.Index(string(log), s); i >= 0 {
			start := strings.LastIndex(string(log[:i]), "\n") + 1
			end := i + strings.Index(string(log[i:])+"\n", "\n")
			t.Errorf("a secret is in the trace log, line:\n%s", strings.ReplaceAll(string(log[start:end]), s, "<SECRET>"))
		}
	}
}

// planHides fails when a value in the plan that Terraform would show (not marked sensitive)
// contains one of secrets.
func planHides(secrets ...string) plancheck.PlanCheck {
	return planCheck(func(p *tfjson.Plan) error {
		var found []string
		for _, rc := range p.ResourceChanges {
			if rc.Change == nil {
				continue
			}
			exposedStrings(rc.Change.Before, rc.Change.BeforeSensitive, rc.Address+" (before)", secrets, &found)
			exposedStrings(rc.Change.After, rc.Change.AfterSensitive, rc.Address+" (after)", secrets, &found)
		}
		for _, vs := range []*tfjson.StateValues{p.PlannedValues, stateValues(p.PriorState)} {
			if vs != nil {
				moduleExposed(vs.RootModule, secrets, &found)
			}
		}
		return foundError("the plan shows", found)
	})
}

// planLacks fails when one of secrets appears anywhere in the plan's resource changes, planned
// values or prior state, sensitive or not.
func planLacks(secrets ...string) plancheck.PlanCheck {
	return planCheck(func(p *tfjson.Plan) error {
		b, err := json.Marshal([]any{p.ResourceChanges, p.PlannedValues, p.PriorState})
		if err != nil {
			return err
		}
		return lacks("the plan", b, secrets)
	})
}

// stateHides fails when a value of the state not marked sensitive contains one of secrets.
func stateHides(secrets ...string) statecheck.StateCheck {
	return stateCheck(func(s *tfjson.State) error {
		var found []string
		if vs := stateValues(s); vs != nil {
			moduleExposed(vs.RootModule, secrets, &found)
		}
		return foundError("the state shows", found)
	})
}

// stateLacks fails when one of secrets appears anywhere in the state, sensitive or not.
func stateLacks(secrets ...string) statecheck.StateCheck {
	return stateCheck(func(s *tfjson.State) error {
		b, err := json.Marshal(s)
		if err != nil {
			return err
		}
		return lacks("the state", b, secrets)
	})
}

func lacks(where string, b []byte, secrets []string) error {
	for i, s := range secrets {
		if strings.Contains(string(b), s) {
			return fmt.Errorf("%s holds write-only secret #%d", where, i+1)
		}
	}
	return nil
}

func foundError(what string, found []string) error {
	if len(found) > 0 {
		return fmt.Errorf("%s a secret in values not marked sensitive: %s", what, strings.Join(found, ", "))
	}
	return nil
}

func stateValues(s *tfjson.State) *tfjson.StateValues {
	if s == nil {
		return nil
	}
	return s.Values
}

func moduleExposed(m *tfjson.StateModule, secrets []string, found *[]string) {
	if m == nil {
		return
	}
	for _, r := range m.Resources {
		var marks any
		json.Unmarshal(r.SensitiveValues, &marks)
		exposedStrings(map[string]any(r.AttributeValues), marks, r.Address, secrets, found)
	}
	for _, c := range m.ChildModules {
		moduleExposed(c, secrets, found)
	}
}

// exposedStrings appends to found the path (under at) of every string in v containing one of
// secrets that sensitive, Terraform's sensitivity marks of v (true, or an object or list of
// marks), leaves unmarked.
func exposedStrings(v, sensitive any, at string, secrets []string, found *[]string) {
	if b, ok := sensitive.(bool); ok && b {
		return
	}
	switch v := v.(type) {
	case string:
		for i, s := range secrets {
			if strings.Contains(v, s) {
				*found = append(*found, fmt.Sprintf("%s (secret #%d)", at, i+1))
			}
		}
	case map[string]any:
		marks, _ := sensitive.(map[string]any)
		for k, x := range v {
			exposedStrings(x, marks[k], at+"."+k, secrets, found)
		}
	case []any:
		marks, _ := sensitive.([]any)
		for i, x := range v {
			var m any
			if i < len(marks) {
				m = marks[i]
			}
			exposedStrings(x, m, fmt.Sprintf("%s[%d]", at, i), secrets, found)
		}
	}
}

type planCheck func(*tfjson.Plan) error

func (f planCheck) CheckPlan(_ context.Context, req plancheck.CheckPlanRequest, resp *plancheck.CheckPlanResponse) {
	resp.Error = f(req.Plan)
}

type stateCheck func(*tfjson.State) error

func (f stateCheck) CheckState(_ context.Context, req statecheck.CheckStateRequest, resp *statecheck.CheckStateResponse) {
	resp.Error = f(req.State)
}

package provider

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferry-dev/terraform-provider-ferry/internal/testenv"
)

// BenchmarkCustomerPlan measures `terraform plan` of one customer's root as users write it — the
// ferry_bundle data source (a tag, resolved at every plan), ferry_environment and
// ferry_application synced to the bundle's digest — against the plan of a root with three
// terraform_data resources holding the same arguments, each already applied, and reports the
// difference (target: ferry ≤ terraform_data + 1 s). Both roots are initialised once (ferry's
// provider from a filesystem mirror, as a customer's CI installs it); only the plans are timed,
// alternating. It also reports the requests one plan makes: to the Kubernetes API (the API
// server's audit log, requests whose user agent is the provider's) and to the registry (the test
// registry's counting proxy).
func BenchmarkCustomerPlan(b *testing.B) {
	tmp := b.TempDir()
	policy, auditLog := filepath.Join(tmp, "audit-policy.yaml"), filepath.Join(tmp, "audit.log")
	writeFile(b, policy, "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n- level: Metadata\n")
	e := testenv.Start(b, testenv.Options{Registry: true, ArgoCD: true, ClusterOptions: testenv.ClusterOptions{
		ExtraAPIServerArgs: []string{"--audit-policy-file", policy, "--audit-log-path", auditLog, "--audit-log-format", "json", "--audit-log-mode", "blocking"},
	}})
	rel := pushRelease(b, e, "apps/customer", map[string]string{"cm.yaml": configMap("settings", "v1")})
	tf := testenv.Terraform(b)
	_, cliConfig := testenv.ProviderMirror(b, "registry.terraform.io")

	ferryDir, dataDir := filepath.Join(tmp, "ferry"), filepath.Join(tmp, "data")
	writeFile(b, filepath.Join(ferryDir, "main.tf"), testenv.ProviderConfig(e)+fmt.Sprintf(`
terraform {
  required_providers {
    ferry = { source = "ferry-dev/ferry", version = %[1]q }
  }
}

data "ferry_bundle" "release" {
  reference = "%[2]s/apps/customer:%[5]s"
}

resource "ferry_environment" "customer" {
  name                = "customer-0001"
  namespaces          = ["customer-0001"]
  source_repositories = ["oci://%[2]s/apps/*"]
  cluster_resources   = ["Namespace"]
  labels              = { tier = "bench" }
  cluster {
    server          = %[3]q
    bearer_token_wo = %[4]q
    insecure        = true
  }
}

resource "ferry_application" "app" {
  name        = "customer-0001"
  environment = ferry_environment.customer.project
  bundle      = data.ferry_bundle.release.pinned_reference
  namespace   = "customer-0001"
  sync_options {
    create_namespace = true
  }
}
`, testenv.ProviderVersion, e.Registry.Addr, e.ArgoCD.ClusterServer, e.Cluster.Token, rel.Tags[0]))
	writeFile(b, filepath.Join(dataDir, "main.tf"), fmt.Sprintf(`
resource "terraform_data" "release" {
  input = { reference = "%[1]s/apps/customer:%[3]s" }
}

resource "terraform_data" "customer" {
  input = {
    name                = "customer-0001"
    namespaces          = ["customer-0001"]
    source_repositories = ["oci://%[1]s/apps/*"]
    cluster_resources   = ["Namespace"]
    labels              = { tier = "bench" }
    cluster             = { server = %[2]q, insecure = true }
  }
}

resource "terraform_data" "app" {
  input = {
    name         = "customer-0001"
    environment  = terraform_data.customer.output.name
    bundle       = terraform_data.release.output.reference
    namespace    = "customer-0001"
    sync_options = { create_namespace = true }
  }
}
`, e.Registry.Addr, e.ArgoCD.ClusterServer, rel.Tags[0]))

	run := func(dir string, args ...string) (time.Duration, error) {
		cmd := testenv.TerraformCommand(tf, dir, cliConfig, args...)
		started := time.Now()
		out, err := cmd.CombinedOutput()
		if err != nil {
			return 0, fmt.Errorf("terraform %s in %s: %w\n%s", strings.Join(args, " "), filepath.Base(dir), err, tail(string(out), 40))
		}
		return time.Since(started), nil
	}
	for _, dir := range []string{ferryDir, dataDir} {
		for _, args := range [][]string{{"init", "-input=false", "-no-color"}, {"apply", "-auto-approve", "-input=false", "-no-color"}} {
			if _, err := run(dir, args...); err != nil {
				b.Fatal(err)
			}
		}
	}
	plan := []string{"plan", "-detailed-exitcode", "-input=false", "-no-color", "-lock=false"}
	planOf := func(name, dir string) time.Duration {
		d, err := run(dir, plan...)
		var exit *exec.ExitError
		if errors.As(err, &exit) && exit.ExitCode() == 2 {
			b.Fatalf("the plan of the %s root is not empty: %v", name, err)
		}
		if err != nil {
			b.Fatal(err)
		}
		return d
	}

	// One plan of the ferry root, its requests counted apart from the timed ones.
	auditBefore := auditLines(b, auditLog)
	regBefore := e.Registry.Requests()
	planOf("ferry", ferryDir)
	kube := providerRequests(b, auditLog, auditBefore)
	regLog := e.Registry.RequestLog()[regBefore:]

	var ferryTotal, dataTotal time.Duration
	iterations := 0
	for ; b.Loop(); iterations++ {
		if iterations%2 == 0 {
			ferryTotal += planOf("ferry", ferryDir)
			dataTotal += planOf("terraform_data", dataDir)
		} else {
			dataTotal += planOf("terraform_data", dataDir)
			ferryTotal += planOf("ferry", ferryDir)
		}
	}
	ferryS, dataS := ferryTotal.Seconds()/float64(iterations), dataTotal.Seconds()/float64(iterations)
	b.ReportMetric(ferryS, "ferry-plan-s")
	b.ReportMetric(dataS, "terraform_data-plan-s")
	b.ReportMetric(ferryS-dataS, "ferry-minus-data-s")
	b.ReportMetric(float64(len(kube)), "kube-requests")
	b.ReportMetric(float64(len(regLog)), "registry-requests")
	b.Logf("terraform plan of one customer (bundle data source, environment, application): ferry %.2fs, three terraform_data %.2fs, difference %.2fs (target ≤ 1 s); "+
		"requests of one plan: Kubernetes %d (%s), registry %d (%s)",
		ferryS, dataS, ferryS-dataS, len(kube), summarize(kube), len(regLog), summarize(regLog))
	if ferryS-dataS > 1 {
		b.Errorf("ferry's customer plan is %.2fs over the terraform_data root's; the target is at most 1 s", ferryS-dataS)
	}
}

// auditLines returns the number of lines in the API server's audit log.
func auditLines(b *testing.B, path string) int {
	b.Helper()
	n := 0
	forAuditEvent(b, path, func(string, string, string) { n++ })
	return n
}

// providerRequests returns "verb resource" for each request in the audit log after its first skip
// lines whose user agent is ferry's provider.
func providerRequests(b *testing.B, path string, skip int) []string {
	b.Helper()
	var out []string
	i := 0
	forAuditEvent(b, path, func(agent, verb, resource string) {
		if i++; i > skip && strings.HasPrefix(agent, "terraform-provider-ferry/") {
			out = append(out, verb+" "+resource)
		}
	})
	return out
}

func forAuditEvent(b *testing.B, path string, fn func(agent, verb, resource string)) {
	b.Helper()
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var ev struct {
			UserAgent string `json:"userAgent"`
			Verb      string `json:"verb"`
			ObjectRef *struct {
				Resource string `json:"resource"`
			} `json:"objectRef"`
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			b.Fatalf("audit log %s: %v", path, err)
		}
		res := "-"
		if ev.ObjectRef != nil {
			res = ev.ObjectRef.Resource
		}
		fn(ev.UserAgent, ev.Verb, res)
	}
	if err := sc.Err(); err != nil {
		b.Fatal(err)
	}
}

// summarize counts equal lines: "get applications ×1, get secrets ×2".
func summarize(lines []string) string {
	count := map[string]int{}
	for _, l := range lines {
		if k, _, ok := strings.Cut(l, " -> "); ok { // the registry log's "METHOD PATH -> STATUS"
			l = k
		}
		count[l]++
	}
	keys := make([]string, 0, len(count))
	for k := range count {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for i, k := range keys {
		keys[i] = fmt.Sprintf("%s ×%d", k, count[k])
	}
	return strings.Join(keys, ", ")
}

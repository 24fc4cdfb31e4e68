package provider

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/ferry-dev/terraform-provider-ferry/bundle"
	"github.com/ferry-dev/terraform-provider-ferry/internal/argocd"
	"github.com/ferry-dev/terraform-provider-ferry/internal/testenv"
)

// BenchmarkPlanRefresh measures `terraform plan` of a configuration with N ferry_application
// resources (default 500, FERRY_BENCH_APPS overrides), every one Synced and Healthy in the real
// Argo CD, against the same applications planned by ferry's schema with no provider work (the
// schema floor, below; target ≤ 1.3×) and against N terraform_data resources. Two floors are
// reported with it: N resources of a minimal framework provider
// (internal/benchprovider), what any framework resource starts from, and the same N applications
// planned by internal/benchprovider/schemafloor, ferry's schema served with no work at all in the
// per-resource calls: what the schema the issue specifies costs Terraform itself. Every plan
// refreshes every resource with Terraform's default parallelism and must find nothing to change.
// The providers are the real binaries, as Terraform runs them. FERRY_BENCH_DIAG=1 logs every
// terraform run's wall and CPU time (Terraform's plus its provider's) and also times
// plan -refresh=false and -parallelism=50; FERRY_BENCH_HOLD=FILE keeps everything up, for
// profiling by hand, until FILE is removed (docs/performance.md).
func BenchmarkPlanRefresh(b *testing.B) {
	n := 500
	if v := os.Getenv("FERRY_BENCH_APPS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			b.Fatalf("FERRY_BENCH_APPS=%q: want a positive number", v)
		}
	}
	// A resync period like Argo CD's default (3 min) rather than the tests' 10 s, so the
	// controller is not comparing all N applications in a loop while Terraform is timed.
	e := testenv.Start(b, testenv.Options{Registry: true, ArgoCD: true, ArgoCDOptions: testenv.ArgoCDOptions{AppResync: 3 * time.Minute}})
	ctx := context.Background()
	c, err := argocd.New(e.Cluster.RESTConfig(), e.ArgoCD.Namespace)
	if err != nil {
		b.Fatal(err)
	}
	rel := pushRelease(b, e, "apps/bench", map[string]string{"cm.yaml": configMap("settings", "v1")})
	ref, err := bundle.ParseReference(e.Registry.Addr + "/apps/bench")
	if err != nil {
		b.Fatal(err)
	}
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("bench-%03d", i)
	}
	if err := c.ApplyEnvironment(ctx, argocd.Environment{
		Name: "bench", Namespaces: names, SourceRepositories: []string{"oci://" + e.Registry.Addr + "/apps/*"},
		ClusterResources: []string{"Namespace"},
		Cluster:          argocd.Cluster{Server: e.ArgoCD.ClusterServer, BearerToken: e.Cluster.Token, Insecure: true},
	}); err != nil {
		b.Fatal(err)
	}
	// The set-up is not what is timed. Argo CD's automated sync deploys the applications (500
	// syncs requested through the engine at once kept two cores' controller busy past the engine's
	// stuck limit), then automated sync is turned off again, as the configuration has it.
	start := time.Now()
	apps := make([]argocd.App, n)
	for i, name := range names {
		apps[i] = argocd.App{Name: name, Project: "bench", RepoURL: ref.OCIURL(), Digest: rel.Digest, Server: e.ArgoCD.ClusterServer,
			Namespace: name, SyncOptions: []string{argocd.SyncOptionCreateNamespace}, CascadeDelete: true}
	}
	applyAll := func(auto bool) {
		var g errgroup.Group
		g.SetLimit(16)
		for _, a := range apps {
			g.Go(func() error {
				a.AutoSync = auto
				_, err := c.ApplyApplication(ctx, a)
				return err
			})
		}
		if err := g.Wait(); err != nil {
			b.Fatalf("apply the %d applications: %v", n, err)
		}
	}
	applyAll(true)
	for deadline := time.Now().Add(30 * time.Minute); ; {
		live, err := c.ListApplications(ctx, argocd.LabelEnvironment+"=bench")
		if err != nil {
			b.Fatal(err)
		}
		done := 0
		for i := range live {
			if st := argocd.StatusOf(&live[i]); st.SyncStatus == "Synced" && st.Revision == rel.Digest && st.HealthStatus == "Healthy" {
				done++
			}
		}
		if done == n {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d applications Synced and Healthy after 30 minutes", done, n)
		}
		time.Sleep(5 * time.Second)
	}
	applyAll(false)
	b.Logf("%d applications Synced and Healthy in %s", n, time.Since(start).Round(time.Second))

	// The provider binaries, used through dev_overrides (no init, no download): ferry and the
	// floor provider (internal/benchprovider), a minimal framework resource with the same four
	// arguments whose Read makes no call: what any framework provider costs Terraform.
	// The schema floor is built as terraform-provider-ferry into its own directory and used by the
	// same configuration and state as ferry, through a second CLI configuration.
	tmp := b.TempDir()
	bin, schemaBin := filepath.Join(tmp, "bin"), filepath.Join(tmp, "schemafloor")
	for out, pkg := range map[string]string{
		filepath.Join(bin, "terraform-provider-ferry"):       "../cmd/terraform-provider-ferry",
		filepath.Join(bin, "terraform-provider-floor"):       "../internal/benchprovider",
		filepath.Join(schemaBin, "terraform-provider-ferry"): "../internal/benchprovider/schemafloor",
	} {
		if msg, err := exec.Command("go", "build", "-o", out, pkg).CombinedOutput(); err != nil {
			b.Fatalf("build %s: %v\n%s", pkg, err, msg)
		}
	}
	cliConfig := func(name, ferryBin string) string {
		rc := filepath.Join(tmp, name)
		writeFile(b, rc, fmt.Sprintf("provider_installation {\n  dev_overrides {\n    \"registry.terraform.io/ferry-dev/ferry\" = %q\n    \"registry.terraform.io/ferry-dev/floor\" = %q\n  }\n  direct {}\n}\n", ferryBin, bin))
		return rc
	}
	rc, schemaRC := cliConfig("dev.tfrc", bin), cliConfig("schemafloor.tfrc", schemaBin)

	var ferryCfg, importCfg, floorCfg, dataCfg strings.Builder
	ferryCfg.WriteString(testenv.ProviderConfig(e) + "terraform {\n  required_providers {\n    ferry = { source = \"ferry-dev/ferry\" }\n  }\n}\n")
	floorCfg.WriteString("terraform {\n  required_providers {\n    floor = { source = \"ferry-dev/floor\" }\n  }\n}\n")
	for i, name := range names {
		fmt.Fprintf(&ferryCfg, `
resource "ferry_application" "a%[1]d" {
  name        = %[2]q
  environment = "bench"
  bundle      = %[3]q
  namespace   = %[2]q
  sync_options {
    create_namespace = true
  }
}
`, i, name, rel.PinnedReference)
		fmt.Fprintf(&importCfg, "\nimport {\n  to = ferry_application.a%d\n  id = %q\n}\n", i, name)
		fmt.Fprintf(&floorCfg, `
resource "floor_item" "a%[1]d" {
  name        = %[2]q
  environment = "bench"
  bundle      = %[3]q
  namespace   = %[2]q
}
`, i, name, rel.PinnedReference)
		fmt.Fprintf(&dataCfg, `
resource "terraform_data" "a%[1]d" {
  input = {
    name        = %[2]q
    environment = "bench"
    bundle      = %[3]q
    namespace   = %[2]q
    sync_options = { create_namespace = true }
  }
}
`, i, name, rel.PinnedReference)
	}
	ferryDir, floorDir, dataDir := filepath.Join(tmp, "ferry"), filepath.Join(tmp, "floor"), filepath.Join(tmp, "data")
	writeFile(b, filepath.Join(ferryDir, "main.tf"), ferryCfg.String())
	writeFile(b, filepath.Join(ferryDir, "import.tf"), importCfg.String())
	writeFile(b, filepath.Join(floorDir, "main.tf"), floorCfg.String())
	writeFile(b, filepath.Join(dataDir, "main.tf"), dataCfg.String())
	tfWith := func(rc, dir string, args ...string) (time.Duration, error) {
		cmd := testenv.TerraformCommand(os.Getenv("TF_ACC_TERRAFORM_PATH"), dir, rc, args...)
		started := time.Now()
		out, err := cmd.CombinedOutput()
		if os.Getenv("FERRY_BENCH_DIAG") != "" && cmd.ProcessState != nil {
			b.Logf("%s %s %v: wall %s cpu user %s sys %s", filepath.Base(rc), filepath.Base(dir), args, time.Since(started), cmd.ProcessState.UserTime(), cmd.ProcessState.SystemTime())
		}
		if err != nil {
			return 0, fmt.Errorf("terraform %s in %s (%s): %w\n%s", strings.Join(args, " "), filepath.Base(dir), filepath.Base(rc), err, tail(string(out), 40))
		}
		return time.Since(started), nil
	}
	tf := func(dir string, args ...string) (time.Duration, error) { return tfWith(rc, dir, args...) }
	// State: the applications imported (a read each, no sync; the import blocks are then removed),
	// the floor items and terraform_data created.
	if _, err := tf(ferryDir, "apply", "-auto-approve", "-no-color"); err != nil {
		b.Fatal(err)
	}
	if err := os.Remove(filepath.Join(ferryDir, "import.tf")); err != nil {
		b.Fatal(err)
	}
	for _, dir := range []string{floorDir, dataDir} {
		if _, err := tf(dir, "apply", "-auto-approve", "-no-color"); err != nil {
			b.Fatal(err)
		}
	}
	plan := []string{"plan", "-detailed-exitcode", "-no-color", "-lock=false"}
	if os.Getenv("FERRY_BENCH_DIAG") != "" {
		for _, extra := range [][]string{{"-refresh=false"}, {"-parallelism=50"}} {
			d1, err1 := tf(ferryDir, append(plan, extra...)...)
			d2, err2 := tf(dataDir, append(plan, extra...)...)
			b.Logf("diag %v: ferry %s (%v) data %s (%v)", extra, d1, err1, d2, err2)
		}
	}
	if hold := os.Getenv("FERRY_BENCH_HOLD"); hold != "" {
		// Keep everything up for manual measurements until the file named by FERRY_BENCH_HOLD is removed.
		writeFile(b, hold, fmt.Sprintf("export TF_CLI_CONFIG_FILE=%s\n# schema floor: TF_CLI_CONFIG_FILE=%s in %s\n# dirs: %s %s %s\n", rc, schemaRC, ferryDir, ferryDir, floorDir, dataDir))
		for {
			if _, err := os.Stat(hold); err != nil {
				break
			}
			time.Sleep(time.Second)
		}
	}
	type run struct{ name, rc, dir string }
	runs := []run{{"ferry", rc, ferryDir}, {"schemafloor", schemaRC, ferryDir}, {"floor", rc, floorDir}, {"data", rc, dataDir}}
	total := map[string]time.Duration{}
	// b.Loop runs the function once however many iterations -benchtime asks for, so the 500
	// applications are set up once (a second set-up of 500 syncs on two cores was slow enough
	// to trip the engine's pick-up limit).
	iterations := 0
	for ; b.Loop(); iterations++ {
		// Rotate the order so no configuration always runs on a warmer machine.
		for k := range runs {
			r := runs[(iterations+k)%len(runs)]
			d, err := tfWith(r.rc, r.dir, plan...)
			var exit *exec.ExitError
			if errors.As(err, &exit) && exit.ExitCode() == 2 {
				b.Fatalf("the plan of %s is not empty: %v", r.name, err)
			}
			if err != nil {
				b.Fatal(err)
			}
			total[r.name] += d
		}
	}
	per := func(name string) float64 { return total[name].Seconds() / float64(iterations) }
	ferryS, schemaS, floorS, dataS := per("ferry"), per("schemafloor"), per("floor"), per("data")
	b.ReportMetric(ferryS, "ferry-plan-s")
	b.ReportMetric(schemaS, "schemafloor-plan-s")
	b.ReportMetric(floorS, "floor-plan-s")
	b.ReportMetric(dataS, "terraform_data-plan-s")
	b.ReportMetric(ferryS/dataS, "ratio")
	b.ReportMetric(schemaS/dataS, "schemafloor-ratio")
	b.ReportMetric(floorS/dataS, "floor-ratio")
	b.ReportMetric(ferryS/schemaS, "ferry/schemafloor")
	b.Logf("terraform plan of %d resources: ferry_application %.2fs, its schema with no provider work %.2fs, minimal framework resource %.2fs, terraform_data %.2fs; "+
		"ferry over its schema floor %.2f (target ≤ 1.3); over terraform_data: ferry %.2f, schema floor %.2f, minimal framework %.2f",
		n, ferryS, schemaS, floorS, dataS, ferryS/schemaS, ferryS/dataS, schemaS/dataS, floorS/dataS)
	if ferryS/schemaS > 1.3 {
		b.Errorf("the plan of %d ferry_application is %.2f× its schema floor; the target is at most 1.3×", n, ferryS/schemaS)
	}
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

package benchfleet

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/rest"

	"github.com/ferry-dev/terraform-provider-ferry/bundle"
	"github.com/ferry-dev/terraform-provider-ferry/internal/argocd"
	"github.com/ferry-dev/terraform-provider-ferry/internal/fleet"
	"github.com/ferry-dev/terraform-provider-ferry/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// counter counts the requests a client sends, and apart the GETs of the Application by the
// name polled (a sync polls its Application until the controller reconciled it and while it
// follows the operation: their number follows the controller's timing).
type counter struct {
	next  http.RoundTripper
	poll  string // a path: GETs of it are counted in polls
	n     atomic.Int64
	polls atomic.Int64
}

func (c *counter) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodGet && r.URL.Path == c.poll {
		c.polls.Add(1)
	} else {
		c.n.Add(1)
	}
	return c.next.RoundTrip(r)
}

// TestBenchFleet (make bench-fleet; skipped unless FERRY_BENCH_FLEET=1) grows a fleet of N = 10,
// 100 and 1,000 (up to FERRY_BENCH_FLEET_N, default 100) environments, each with an Application
// that Argo CD's automated sync keeps synced, on one real kube-apiserver and Argo CD. At each N it
// measures the API requests of one more customer's apply, refresh and destroy, step by step, and
// the latency of fleet status over the whole fleet: fleet.Observe in the process, and the ferry
// binary's `ferry fleet status`.
func TestBenchFleet(t *testing.T) {
	if os.Getenv("FERRY_BENCH_FLEET") != "1" {
		t.Skip("set FERRY_BENCH_FLEET=1 (make bench-fleet) to run the fleet benchmark")
	}
	limit := 100
	if v := os.Getenv("FERRY_BENCH_FLEET_N"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 10 {
			t.Fatalf("FERRY_BENCH_FLEET_N=%q: want a number of environments, at least 10", v)
		}
		limit = n
	}
	var sizes []int
	for _, n := range []int{10, 100, 1000} {
		if n <= limit {
			sizes = append(sizes, n)
		}
	}
	e := testenv.Start(t, testenv.Options{Registry: true, ArgoCD: true})
	ctx := context.Background()
	c, err := argocd.New(e.Cluster.RESTConfig(), e.ArgoCD.Namespace)
	if err != nil {
		t.Fatal(err)
	}
	digest, repoURL := pushBundle(t, e)
	ferryBin := filepath.Join(t.TempDir(), "ferry")
	if out, err := exec.Command("go", "build", "-o", ferryBin, "github.com/ferry-dev/terraform-provider-ferry/cmd/ferry").CombinedOutput(); err != nil {
		t.Fatalf("build ferry: %v\n%s", err, out)
	}

	tf := testenv.Terraform(t)
	_, cliConfig := testenv.ProviderMirror(t, "registry.terraform.io")

	fmt.Printf("bench-fleet: %d CPUs, GOMAXPROCS %d, N up to %d\n", runtime.NumCPU(), runtime.GOMAXPROCS(0), limit)
	have := 0
	var report []string
	for _, n := range sizes {
		start := time.Now()
		grow(t, c, e, have, n, repoURL, digest)
		have = n
		created := time.Since(start)
		start = time.Now()
		done := settle(t, c, n, digest)
		settled := time.Since(start)
		steps, total := customer(t, e, repoURL, digest, fmt.Sprintf("bench-customer-%d", n))
		applyRSS, destroyRSS := providerRSS(t, e, tf, cliConfig, repoURL, digest, fmt.Sprintf("bench-tf-%d", n))
		observe := latencies(5, func() {
			ls, err := fleet.Observe(ctx, c, fleet.Selector{}, digest, time.Now())
			if err != nil || len(ls) != n {
				t.Fatalf("Observe() = %d environments, %v; want %d", len(ls), err, n)
			}
		})
		cli := latencies(3, func() {
			cmd := exec.Command(ferryBin, "fleet", "status", "--kubeconfig", e.Cluster.Kubeconfig, "--argocd-namespace", e.ArgoCD.Namespace)
			cmd.Stdout, cmd.Stderr = nil, os.Stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("ferry fleet status: %v", err)
			}
		})
		line := fmt.Sprintf("N=%-5d created in %-6s synced %d/%d in %-6s | one customer: %d requests besides the GETs of its Application by name (%s) | provider peak RSS: apply %d MB, destroy %d MB | fleet.Observe median %s max %s | ferry fleet status median %s max %s",
			n, created.Round(time.Second), done, n, settled.Round(time.Second), total, steps, applyRSS>>20, destroyRSS>>20, observe[len(observe)/2], observe[len(observe)-1],
			cli[len(cli)/2], cli[len(cli)-1])
		fmt.Println("bench-fleet: " + line)
		report = append(report, line)
	}
	fmt.Println("bench-fleet summary:\n  " + strings.Join(report, "\n  "))
}

// environment is the ferry environment of customer name.
func environment(e *testenv.Env, name string) argocd.Environment {
	return argocd.Environment{
		Name: name, Labels: map[string]string{"tier": "bench"}, Namespaces: []string{name},
		SourceRepositories: []string{"oci://" + e.Registry.Addr + "/bench/*"}, ClusterResources: []string{"Namespace"},
		Cluster: argocd.Cluster{Server: e.ArgoCD.ClusterServer, BearerToken: e.Cluster.Token, Insecure: true},
	}
}

func app(e *testenv.Env, name, repoURL, digest string, auto bool) argocd.App {
	return argocd.App{Name: name, Project: name, RepoURL: repoURL, Digest: digest, Server: e.ArgoCD.ClusterServer, Namespace: name,
		SyncOptions: []string{argocd.SyncOptionCreateNamespace}, CascadeDelete: true, AutoSync: auto}
}

// pushBundle pushes a one-ConfigMap release; it returns its digest and repoURL.
func pushBundle(t *testing.T, e *testenv.Env) (string, string) {
	t.Helper()
	dir := t.TempDir()
	for p, content := range map[string]string{
		"ferry.yaml": "apiVersion: ferry.dev/v1\nkind: Bundle\nname: shop\nversion: 1.0.0\nmanifests: m\n",
		"m/cm.yaml":  "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: shop}\ndata: {version: \"1.0.0\"}\n",
	} {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, p), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bc, _ := bundle.NewClient(bundle.ClientOptions{PlainHTTP: true, Credentials: bundle.StaticCredentials(nil, nil)})
	ref, _ := bundle.ParseReference(e.Registry.Addr + "/bench/shop")
	res, err := bundle.Push(context.Background(), bc, dir, ref, bundle.PushOptions{PackOptions: bundle.PackOptions{Created: time.Unix(1764115200, 0)}})
	if err != nil {
		t.Fatal(err)
	}
	return res.Digest, ref.OCIURL()
}

// grow adds the environments from..to-1 with an automatically synced Application each.
func grow(t *testing.T, c *argocd.Client, e *testenv.Env, from, to int, repoURL, digest string) {
	t.Helper()
	var g errgroup.Group
	g.SetLimit(16)
	for i := from; i < to; i++ {
		g.Go(func() error {
			name := fmt.Sprintf("bench-%04d", i)
			if err := c.ApplyEnvironment(context.Background(), environment(e, name)); err != nil {
				return err
			}
			_, err := c.ApplyApplication(context.Background(), app(e, name, repoURL, digest, true))
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
}

// settle waits, up to 20 minutes, until Argo CD has synced the whole fleet, and returns how many
// Applications are done.
func settle(t *testing.T, c *argocd.Client, n int, digest string) int {
	t.Helper()
	deadline := time.Now().Add(20 * time.Minute)
	for {
		ls, err := fleet.Observe(context.Background(), c, fleet.Selector{}, digest, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		done := fleet.Count(ls).Done
		if done >= n || time.Now().After(deadline) {
			return done
		}
		time.Sleep(5 * time.Second)
	}
}

// customer runs one customer's apply, refresh and destroy with a counting client and returns the
// requests of each step and their total.
func customer(t *testing.T, e *testenv.Env, repoURL, digest, name string) (string, int64) {
	t.Helper()
	ctx := context.Background()
	cfg := rest.CopyConfig(e.Cluster.RESTConfig())
	ct := &counter{poll: "/apis/argoproj.io/v1alpha1/namespaces/" + e.ArgoCD.Namespace + "/applications/" + name}
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { ct.next = rt; return ct }
	c, err := argocd.New(cfg, e.ArgoCD.Namespace)
	if err != nil {
		t.Fatal(err)
	}
	var steps []string
	step := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s %s: %v", what, name, err)
		}
		steps = append(steps, fmt.Sprintf("%s %d", what, ct.n.Swap(0)))
		if polls := ct.polls.Swap(0); polls > 0 {
			steps[len(steps)-1] += fmt.Sprintf(" (+%d GETs of the Application)", polls)
		}
	}
	var total int64
	step("ApplyEnvironment", c.ApplyEnvironment(ctx, environment(e, name)))
	_, err = c.ReadEnvironment(ctx, name)
	step("ReadEnvironment", err)
	_, err = c.RepairOverrides(ctx, name)
	step("RepairOverrides", err)
	a := app(e, name, repoURL, digest, false)
	_, err = c.Sync(ctx, a, true, argocd.SyncOptions{Timeout: 5 * time.Minute})
	step("Sync", err)
	_, err = c.Status(ctx, name)
	step("Status", err)
	step("DeleteApplication", c.DeleteApplication(ctx, name, true))
	step("DeleteEnvironment", c.DeleteEnvironment(ctx, name))
	for _, s := range steps {
		f := strings.Fields(s)
		n, _ := strconv.ParseInt(f[1], 10, 64)
		total += n
	}
	return strings.Join(steps, ", "), total
}

// latencies runs fn n times and returns the durations, sorted.
func latencies(n int, fn func()) []time.Duration {
	var ds []time.Duration
	for range n {
		start := time.Now()
		fn()
		ds = append(ds, time.Since(start).Round(time.Millisecond))
	}
	slices.Sort(ds)
	return ds
}

// providerRSS applies and destroys one more customer (ferry_environment and ferry_application)
// with Terraform and ferry's provider, and returns the provider process's peak resident set size
// during each: the largest VmHWM of a terraform-provider-ferry process, read from /proc every
// 20 ms while Terraform runs (VmHWM only grows, so the last reading holds all but the last 20 ms).
func providerRSS(t *testing.T, e *testenv.Env, tf, cliConfig, repoURL, digest, name string) (apply, destroy int64) {
	t.Helper()
	dir := t.TempDir()
	root := fmt.Sprintf(`terraform {
  required_providers {
    ferry = { source = "ferry-dev/ferry" }
  }
}

provider "ferry" {
  kubernetes {
    config_path = %[1]q
  }
  argocd_namespace = %[2]q
  registry {
    address    = %[3]q
    plain_http = true
  }
}

resource "ferry_environment" "env" {
  name                = %[4]q
  namespaces          = [%[4]q]
  source_repositories = ["oci://%[3]s/bench/*"]
  cluster_resources   = ["Namespace"]
  labels              = { tier = "bench" }
  cluster {
    server          = %[5]q
    bearer_token_wo = %[6]q
    insecure        = true
  }
}

resource "ferry_application" "app" {
  name        = %[4]q
  environment = ferry_environment.env.project
  bundle      = %[7]q
  namespace   = %[4]q
  sync_options {
    create_namespace = true
  }
}
`, e.Cluster.Kubeconfig, e.ArgoCD.Namespace, e.Registry.Addr, name, e.ArgoCD.ClusterServer, e.Cluster.Token,
		strings.TrimPrefix(repoURL, "oci://")+"@"+digest)
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(root), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) int64 {
		cmd := exec.Command(tf, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "TF_CLI_CONFIG_FILE="+cliConfig, "TF_IN_AUTOMATION=1", "TF_INPUT=0", "CHECKPOINT_DISABLE=1")
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		var peak int64
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case err := <-exited:
				if err != nil {
					t.Fatalf("terraform %s: %v\n%s", strings.Join(args, " "), err, out.String())
				}
				return peak
			case <-tick.C:
				peak = max(peak, providerHWM())
			}
		}
	}
	run("init", "-input=false", "-no-color")
	apply = run("apply", "-auto-approve", "-input=false", "-no-color")
	destroy = run("destroy", "-auto-approve", "-input=false", "-no-color")
	return apply, destroy
}

// providerHWM returns the largest VmHWM, in bytes, of the running terraform-provider-ferry
// processes, 0 when there is none.
func providerHWM() int64 {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	var peak int64
	for _, p := range procs {
		cmdline, err := os.ReadFile(p)
		if err != nil || !strings.Contains(string(cmdline), "terraform-provider-ferry") {
			continue
		}
		status, err := os.ReadFile(filepath.Join(filepath.Dir(p), "status"))
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(status), "\n") {
			if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				peak = max(peak, kb<<10)
			}
		}
	}
	return peak
}

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/ferry-dev/terraform-provider-ferry/bundle"
	"github.com/ferry-dev/terraform-provider-ferry/internal/argocd"
	"github.com/ferry-dev/terraform-provider-ferry/internal/fleet"
	"github.com/ferry-dev/terraform-provider-ferry/internal/testenv"
	"github.com/ferry-dev/terraform-provider-ferry/internal/window"
)

// countingTransport counts the requests a Kubernetes client sends, and the lists among them.
type countingTransport struct {
	next          http.RoundTripper
	total, lists  atomic.Int64
	mu            sync.Mutex
	listedClasses []string
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.total.Add(1)
	if r.Method == http.MethodGet && r.URL.Query().Get("watch") == "" && !strings.Contains(lastSegment(r.URL.Path), ".") {
		// A GET of a collection (…/applications, …/appprojects) is a list; a GET of one object
		// ends in its name.
		parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
		if len(parts) >= 2 && (parts[len(parts)-1] == "applications" || parts[len(parts)-1] == "appprojects") {
			c.lists.Add(1)
			c.mu.Lock()
			c.listedClasses = append(c.listedClasses, parts[len(parts)-1]+"?"+r.URL.RawQuery)
			c.mu.Unlock()
		}
	}
	return c.next.RoundTrip(r)
}

func lastSegment(p string) string { return p[strings.LastIndex(p, "/")+1:] }

// countingClient returns an Argo CD client whose requests t counts.
func countingClient(t *testing.T, e *testenv.Env) (*argocd.Client, *countingTransport) {
	t.Helper()
	cfg := rest.CopyConfig(e.Cluster.RESTConfig())
	ct := &countingTransport{}
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { ct.next = rt; return ct }
	c, err := argocd.New(cfg, e.ArgoCD.Namespace)
	if err != nil {
		t.Fatal(err)
	}
	return c, ct
}

// TestCLIFleetStatus builds a small fleet on the real Argo CD — one environment done at the
// bundle's digest, one synced to the previous release, one whose sync to the digest failed for
// real (its cluster is a closed port: transient), one whose deployment window is closed, one
// without an Application — and checks `ferry fleet status` (JSON and text, the tag resolved with
// the registry), that fleet.Observe reads the whole fleet with exactly two list requests, and
// that a Synced status left from the previous revision is never reported as done.
func TestCLIFleetStatus(t *testing.T) {
	e := sharedEnv.Get(t)
	ctx := context.Background()
	c, err := argocd.New(e.Cluster.RESTConfig(), e.ArgoCD.Namespace)
	if err != nil {
		t.Fatal(err)
	}
	const label = "fleet-status-test"
	repo := e.Registry.Addr + "/cli/fleet-status"
	push := func(version string) string {
		dir := writeRelease(t, map[string]string{
			"ferry.yaml": "apiVersion: ferry.dev/v1\nkind: Bundle\nname: shop\nversion: " + version + "\nmanifests: m\n",
			"m/cm.yaml":  "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: shop}\ndata: {version: \"" + version + "\"}\n",
		})
		bc, _ := bundle.NewClient(bundle.ClientOptions{PlainHTTP: true, Credentials: bundle.StaticCredentials(nil, nil)})
		ref, _ := bundle.ParseReference(repo)
		res, err := bundle.Push(ctx, bc, dir, ref, bundle.PushOptions{PackOptions: bundle.PackOptions{Created: time.Unix(1764115200, 0)}})
		if err != nil {
			t.Fatal(err)
		}
		return res.Digest
	}
	old, cur := push("1.0.0"), push("1.1.0")

	l, _ := net.Listen("tcp", "127.0.0.1:0")
	closedPort := "https://" + l.Addr().String()
	l.Close()
	later := time.Now().UTC().Add(12 * time.Hour)
	closedWindow := []window.Spec{{Kind: "allow", Schedule: fmt.Sprintf("0 %d * * *", later.Hour()), Duration: "1h"}}
	envs := []struct {
		name    string
		server  string
		windows []window.Spec
		digest  string // "" for no Application
		sync    bool
	}{
		{"fs-done", e.ArgoCD.ClusterServer, nil, cur, true},
		{"fs-old", e.ArgoCD.ClusterServer, nil, old, true},
		{"fs-failed", closedPort, nil, cur, true},
		{"fs-closed", e.ArgoCD.ClusterServer, closedWindow, old, false},
		{"fs-missing", e.ArgoCD.ClusterServer, nil, "", false},
		{"fs-stale", e.ArgoCD.ClusterServer, nil, old, true},
	}
	apps := map[string]argocd.App{}
	var wg sync.WaitGroup
	errs := make(chan error, len(envs))
	for _, env := range envs {
		if err := c.ApplyEnvironment(ctx, argocd.Environment{
			Name: env.name, Labels: map[string]string{label: "yes", "tier": map[bool]string{true: "canary", false: "main"}[env.name == "fs-done"]},
			Namespaces: []string{env.name}, SourceRepositories: []string{"oci://" + e.Registry.Addr + "/cli/*"}, ClusterResources: []string{"Namespace"},
			Cluster: argocd.Cluster{Server: env.server, BearerToken: e.Cluster.Token, Insecure: true}, Windows: env.windows,
		}); err != nil {
			t.Fatal(err)
		}
		if env.digest == "" {
			continue
		}
		a := argocd.App{Name: env.name, Project: env.name, RepoURL: "oci://" + repo, Digest: env.digest, Server: env.server, Namespace: env.name,
			SyncOptions: []string{argocd.SyncOptionCreateNamespace}, CascadeDelete: true}
		apps[env.name] = a
		if !env.sync {
			if _, err := c.ApplyApplication(ctx, a); err != nil {
				t.Fatal(err)
			}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.Sync(ctx, a, true, argocd.SyncOptions{Timeout: 2 * time.Minute, TransientRetries: -1})
			if a.Name == "fs-failed" {
				if se, ok := err.(*argocd.SyncError); !ok || se.Class != argocd.ClassTransient {
					errs <- fmt.Errorf("Sync(fs-failed) = %v, want a transient failure", err)
				}
				return
			}
			if err != nil {
				errs <- fmt.Errorf("Sync(%s) = %v", a.Name, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// fs-stale is only there for the last step; it is done at the old digest meanwhile.
	sel := label + "=yes"

	t.Run("json", func(t *testing.T) {
		r := ferry(t, []string{"KUBE_CONFIG_PATH=" + e.Cluster.Kubeconfig, "DOCKER_CONFIG=" + t.TempDir()}, "",
			"fleet", "status", "--bundle", repo+":1.1.0", "--plain-http", "-l", sel, "--argocd-namespace", e.ArgoCD.Namespace, "--format", "json")
		if r.code != 0 {
			t.Fatalf("ferry fleet status = exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		var got struct {
			Digest, Version string
			Environments    []fleet.Live
			Counts          fleet.Counts
		}
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
			t.Fatalf("ferry fleet status --format json: %v\n%s", err, r.stdout)
		}
		if got.Digest != cur || got.Version != "1.1.0" {
			t.Errorf("digest, version = %s, %s; want %s, 1.1.0 (the tag resolved)", got.Digest, got.Version, cur)
		}
		want := map[string]fleet.State{"fs-done": fleet.StateDone, "fs-old": fleet.StateOutOfDate, "fs-failed": fleet.StateFailed,
			"fs-closed": fleet.StateWindowClosed, "fs-missing": fleet.StateMissing, "fs-stale": fleet.StateOutOfDate}
		if len(got.Environments) != len(want) {
			t.Fatalf("environments = %d, want %d:\n%s", len(got.Environments), len(want), r.stdout)
		}
		for _, l := range got.Environments {
			if l.State != want[l.Environment] {
				t.Errorf("%s: state %s, want %s (%+v)", l.Environment, l.State, want[l.Environment], l)
			}
			if l.Done != (l.State == fleet.StateDone) {
				t.Errorf("%s: done %v with state %s", l.Environment, l.Done, l.State)
			}
			switch l.Environment {
			case "fs-done":
				if l.Revision != cur || l.Deployed != cur || l.SyncStatus != "Synced" || l.HealthStatus != "Healthy" || !l.WindowOpen {
					t.Errorf("fs-done = %+v, want Synced, Healthy at %s, window open", l, cur)
				}
			case "fs-old":
				if l.Revision != old || l.Deployed != old || l.SyncStatus != "OutOfSync" {
					t.Errorf("fs-old = %+v, want at %s and OutOfSync for the bundle's digest (Argo CD says Synced, to the old one)", l, old)
				}
			case "fs-failed":
				if l.FailureClass != "transient" || l.FailureMessage == "" || l.FailureRevision != cur || l.Deployed != "" {
					t.Errorf("fs-failed = %+v, want the transient failure to %s", l, cur)
				}
			case "fs-closed":
				if l.WindowOpen || l.WindowNextOpen == nil {
					t.Errorf("fs-closed = %+v, want the window closed with its next opening", l)
				}
			case "fs-missing":
				if l.Found || l.Application != "" {
					t.Errorf("fs-missing = %+v, want no Application", l)
				}
			}
		}
		wantCounts := fleet.Counts{Done: 1, Failed: 1, FailedByClass: map[string]int{"transient": 1}, OutOfDate: 2, WindowClosed: 1, Missing: 1, Total: 6}
		if fmt.Sprint(got.Counts) != fmt.Sprint(wantCounts) {
			t.Errorf("counts = %+v, want %+v", got.Counts, wantCounts)
		}
	})

	t.Run("text", func(t *testing.T) {
		r := ferry(t, []string{"KUBE_CONFIG_PATH=" + e.Cluster.Kubeconfig}, "",
			"fleet", "status", "--bundle", repo+"@"+cur, "-l", sel+",tier=main", "--argocd-namespace", e.ArgoCD.Namespace)
		if r.code != 0 {
			t.Fatalf("ferry fleet status = exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		t.Logf("ferry fleet status:\n%s", r.stdout)
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		if !strings.HasPrefix(lines[2], "ENVIRONMENT") || !strings.Contains(lines[2], "LAST FAILURE") {
			t.Fatalf("no table heading:\n%s", r.stdout)
		}
		row := func(env string) []string {
			for _, l := range lines {
				if f := strings.Fields(l); len(f) > 0 && f[0] == env {
					return f
				}
			}
			t.Fatalf("no row for %s:\n%s", env, r.stdout)
			return nil
		}
		if strings.Contains(r.stdout, "fs-done") {
			t.Errorf("-l tier=main shows fs-done, a canary:\n%s", r.stdout)
		}
		if f := row("fs-old"); f[2] != "out" || f[5] != strings.Split(old, ":")[0]+":"+strings.Split(old, ":")[1][:12] || f[6] != "OutOfSync" {
			t.Errorf("fs-old row = %q", f)
		}
		if l := strings.Join(row("fs-failed"), " "); !strings.Contains(l, "failed (transient)") || !strings.Contains(l, "transient: ") {
			t.Errorf("fs-failed row = %q, want failed (transient) and the failure", l)
		}
		if l := strings.Join(row("fs-closed"), " "); !strings.Contains(l, "closed until "+later.Format("2006-01-02T15")+":00Z") {
			t.Errorf("fs-closed row = %q, want closed until %s:00Z", l, later.Format("2006-01-02T15"))
		}
		if f := row("fs-missing"); f[1] != "-" || f[2] != "missing" {
			t.Errorf("fs-missing row = %q", f)
		}
		if last := lines[len(lines)-1]; last != "1 failed (transient), 2 out of date, 1 window closed, 1 missing" {
			t.Errorf("counts line = %q", last)
		}
	})

	t.Run("errors", func(t *testing.T) {
		env := []string{"KUBE_CONFIG_PATH=" + e.Cluster.Kubeconfig}
		for _, tt := range []struct {
			args []string
			code int
			flag string
		}{
			{[]string{"--environment", "fs-nowhere"}, 2, "--environment"},
			{[]string{"-l", "tier in (a"}, 2, "--selector"},
			{[]string{"--bundle", "oci-layout:/tmp/x"}, 2, "--bundle"},
		} {
			r := ferry(t, env, "", append([]string{"fleet", "status", "--argocd-namespace", e.ArgoCD.Namespace}, tt.args...)...)
			if r.code != tt.code || !strings.Contains(r.stderr, tt.flag) {
				t.Errorf("ferry fleet status %s = exit %d %q, want exit %d naming %s", strings.Join(tt.args, " "), r.code, r.stderr, tt.code, tt.flag)
			}
		}
	})

	t.Run("two lists", func(t *testing.T) {
		cc, ct := countingClient(t, e)
		ls, err := fleet.Observe(ctx, cc, fleet.Selector{Labels: sel}, cur, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if len(ls) != 6 {
			t.Errorf("Observe() = %d environments, want 6", len(ls))
		}
		if n, lists := ct.total.Load(), ct.lists.Load(); n != 2 || lists != 2 {
			t.Errorf("Observe() sent %d requests, %d of them lists (%v), want exactly 2 lists", n, lists, ct.listedClasses)
		}
		ct.total.Store(0)
		ct.lists.Store(0)
		if _, err := fleet.Observe(ctx, cc, fleet.Selector{Names: []string{"fs-done", "fs-old"}}, "", time.Now()); err != nil {
			t.Fatal(err)
		}
		if n := ct.total.Load(); n != 2 {
			t.Errorf("Observe(by name) sent %d requests, want 2", n)
		}
	})

	// Last, as it moves fs-stale: its targetRevision is changed to the new digest and Observe runs
	// at once. Argo CD still says Synced (at the old revision) until it compares again; that must
	// never count as done, for the new digest, for the old one, or for its own target.
	t.Run("stale synced", func(t *testing.T) {
		a := apps["fs-stale"]
		a.Digest = cur
		if _, err := c.ApplyApplication(ctx, a); err != nil {
			t.Fatal(err)
		}
		for _, digest := range []string{cur, old, ""} {
			ls, err := fleet.Observe(ctx, c, fleet.Selector{Names: []string{"fs-stale"}}, digest, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if len(ls) != 1 || ls[0].Done || ls[0].State == fleet.StateDone || ls[0].SyncStatus == "Synced" {
				t.Errorf("Observe(%q) right after the targetRevision changed = %+v, want not done and not Synced", digest, ls)
			}
		}
	})
}

package argocd_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/ferry-dev/terraform-provider-ferry/internal/argocd"
	"github.com/ferry-dev/terraform-provider-ferry/internal/testenv"
)

// requestLog records the requests a Kubernetes client sends: method and path, and, for lists
// (a GET of a collection, not a watch), the label selector.
type requestLog struct {
	next http.RoundTripper
	mu   sync.Mutex
	reqs []string
}

func (l *requestLog) RoundTrip(r *http.Request) (*http.Response, error) {
	l.mu.Lock()
	l.reqs = append(l.reqs, r.Method+" "+r.URL.Path+"?"+r.URL.RawQuery)
	l.mu.Unlock()
	return l.next.RoundTrip(r)
}

// WrappedRoundTripper lets client-go cancel requests through the log.
func (l *requestLog) WrappedRoundTripper() http.RoundTripper { return l.next }

// loggedClient returns a client for e's Argo CD whose requests log records.
func loggedClient(t *testing.T, e *testenv.Env) (*argocd.Client, *requestLog) {
	t.Helper()
	cfg := rest.CopyConfig(e.Cluster.RESTConfig())
	log := &requestLog{}
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { log.next = rt; return log }
	c, err := argocd.New(cfg, e.ArgoCD.Namespace)
	if err != nil {
		t.Fatal(err)
	}
	return c, log
}

// take returns the requests recorded since the last take.
func (l *requestLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.reqs
	l.reqs = nil
	return out
}

// isList reports whether a recorded request lists a collection of Argo CD's namespace (the
// applications, appprojects or secrets), and returns its query.
func isList(req string) (url.Values, bool) {
	method, rest, _ := strings.Cut(req, " ")
	path, query, _ := strings.Cut(rest, "?")
	q, _ := url.ParseQuery(query)
	if method != http.MethodGet || q.Get("watch") != "" {
		return q, false
	}
	switch path[strings.LastIndex(path, "/")+1:] {
	case "applications", "appprojects", "secrets":
		return q, true
	}
	return q, false
}

// TestScaleOneCustomer: the API requests of one customer's apply, refresh and destroy —
// ApplyEnvironment, ReadEnvironment, RepairOverrides (the environment's refresh), Sync of its
// Application to Synced and Healthy, ApplyApplication, Status (the application's refresh),
// DeleteApplication and DeleteEnvironment — are the same in number with no other customer and
// with 30 other environments and Applications present, and every list they make is scoped by a
// label selector to the customer's environment. Of a sync, the GETs of its own Application by
// name are counted apart and not compared: they poll the controller, so their number follows its
// timing (ten to twenty, from run to run), not the fleet.
func TestScaleOneCustomer(t *testing.T) {
	e := shared.Get(t)
	ctx := context.Background()
	c, log := loggedClient(t, e)
	// One bundle for every customer: setup pushes it and writes the first customer's environment,
	// which is deleted again so that the first measurement starts from nothing of it.
	_, plain, base := setupIn(t, e, "scale-base", map[string]string{"cm.yaml": cm("shop", "1")})
	if err := plain.DeleteEnvironment(ctx, "scale-base"); err != nil {
		t.Fatal(err)
	}

	customer := func(name string) map[string]int {
		t.Helper()
		counts := map[string]int{}
		log.take()
		step := func(what string, err error) {
			t.Helper()
			if err != nil {
				t.Fatalf("%s %s: %v", what, name, err)
			}
			reqs := log.take()
			for _, r := range reqs {
				// A sync reads its Application by name until Argo CD has reconciled it for the
				// first time, and again while it follows the operation: how many times depends
				// on the controller's timing, not on the fleet, and each is one GET by name.
				if what == "Sync" && strings.HasPrefix(r, http.MethodGet+" ") && strings.HasSuffix(strings.Split(r, "?")[0], "/applications/"+name) {
					counts["Sync: GETs of the Application"]++
					continue
				}
				counts[what]++
			}
			for _, r := range reqs {
				q, ok := isList(r)
				if !ok {
					continue
				}
				sel := q.Get("labelSelector")
				if !strings.Contains(sel, argocd.LabelEnvironment+"="+name) {
					t.Errorf("%s %s: list %s is not scoped to the environment (labelSelector %q)", what, name, r, sel)
				}
			}
		}
		env := environment(e, name)
		step("ApplyEnvironment", c.ApplyEnvironment(ctx, env))
		_, err := c.ReadEnvironment(ctx, name)
		step("ReadEnvironment", err)
		_, err = c.RepairOverrides(ctx, name)
		step("RepairOverrides", err)
		a := base
		a.Name, a.Project, a.Namespace = name, name, name
		_, err = c.Sync(ctx, a, true, argocd.SyncOptions{Timeout: 2 * time.Minute})
		step("Sync", err)
		_, err = c.ApplyApplication(ctx, a)
		step("ApplyApplication", err)
		_, err = c.Status(ctx, name)
		step("Status", err)
		step("DeleteApplication", c.DeleteApplication(ctx, name, true))
		step("DeleteEnvironment", c.DeleteEnvironment(ctx, name))
		return counts
	}

	alone := customer("scale-one")

	// 30 other customers: an environment each and an Application in it (applied, not synced:
	// what matters is that they are there to be listed).
	var wg sync.WaitGroup
	errs := make(chan error, 30)
	for i := range 30 {
		wg.Go(func() {
			name := fmt.Sprintf("scale-other-%02d", i)
			if err := plain.ApplyEnvironment(ctx, environment(e, name)); err != nil {
				errs <- err
				return
			}
			a := base
			a.Name, a.Project, a.Namespace = name, name, name
			if _, err := plain.ApplyApplication(ctx, a); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for i := range 30 {
			name := fmt.Sprintf("scale-other-%02d", i)
			_ = plain.DeleteApplication(context.Background(), name, true)
			_ = plain.DeleteEnvironment(context.Background(), name)
		}
	})

	crowded := customer("scale-many")
	t.Logf("requests per step, alone: %v; with 30 others: %v", alone, crowded)
	for what, n := range alone {
		if strings.HasPrefix(what, "Sync: ") {
			continue
		}
		if crowded[what] != n {
			t.Errorf("%s: %d requests with 30 other customers, want %d as with none", what, crowded[what], n)
		}
	}
}

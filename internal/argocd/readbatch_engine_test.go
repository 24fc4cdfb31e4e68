package argocd_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ferry-dev/terraform-provider-ferry/internal/argocd"
)

// TestBatchReader: reads of many Applications of one environment are answered from one list
// scoped to the environment, after BatchThreshold-1 GETs; every answer is the live object; an
// Application the list does not hold is read with a GET; after a write through the client the old
// list answers nothing more (the next read makes one request and sees the write); a deleted Application is not found; past BatchTTL the environment
// is listed again; concurrent reads share one list.
func TestBatchReader(t *testing.T) {
	e := shared.Get(t)
	ctx := context.Background()
	_, plain, base := setupIn(t, e, "batch", map[string]string{"cm.yaml": cm("shop", "1")})
	c, log := loggedClient(t, e)
	const n = 12
	names := make([]string, n)
	// The controller does not reconcile them (argocd.argoproj.io/skip-reconcile): its status writes
	// between a list and the comparison below would change the live resourceVersion.
	apps := plain.Dynamic().Resource(argocd.ApplicationGVR).Namespace(e.ArgoCD.Namespace)
	for i := range names {
		names[i] = fmt.Sprintf("batch-%02d", i)
		u := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
			"metadata": map[string]any{"name": names[i],
				"labels":      map[string]any{argocd.LabelEnvironment: "batch"},
				"annotations": map[string]any{"argocd.argoproj.io/skip-reconcile": "true"}},
			"spec": map[string]any{"project": base.Project,
				"source":      map[string]any{"repoURL": base.RepoURL, "targetRevision": base.Digest, "path": "."},
				"destination": map[string]any{"server": base.Server, "namespace": base.Namespace}},
		}}
		if _, err := apps.Create(ctx, u, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// The last one without the environment's label (as an Application ferry has not written since
	// the label was introduced): the list does not hold it.
	patch := fmt.Sprintf(`{"metadata":{"labels":{%q:null}}}`, argocd.LabelEnvironment)
	if _, err := apps.Patch(ctx, names[n-1], types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, name := range names {
			plain.DeleteApplication(context.Background(), name, false)
		}
	})

	clock := time.Now()
	r := argocd.NewBatchReader(c)
	r.SetNow(func() time.Time { return clock })
	read := func(name string) {
		t.Helper()
		got, err := r.GetApplication(ctx, "batch", name)
		if err != nil {
			t.Fatalf("GetApplication(%s): %v", name, err)
		}
		live, err := plain.GetApplication(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if got.GetName() != name || got.GetResourceVersion() != live.GetResourceVersion() {
			t.Errorf("GetApplication(%s) = %s at resourceVersion %s, want %s at %s", name, got.GetName(), got.GetResourceVersion(), name, live.GetResourceVersion())
		}
	}
	count := func(reqs []string) (gets, lists int) {
		t.Helper()
		for _, req := range reqs {
			q, isL := isList(req)
			switch {
			case isL:
				lists++
				if sel := q.Get("labelSelector"); sel != argocd.LabelEnvironment+"=batch" {
					t.Errorf("list %s is not scoped to the environment", req)
				}
			case strings.HasPrefix(req, http.MethodGet+" ") && strings.Contains(req, "/applications/"):
				gets++
			default:
				t.Errorf("unexpected request %s", req)
			}
		}
		return gets, lists
	}

	log.take()
	for _, name := range names {
		read(name)
	}
	if gets, lists := count(log.take()); gets != argocd.BatchThreshold-1+1 || lists != 1 {
		t.Errorf("%d reads: %d GETs and %d lists, want %d GETs (the first %d reads and the unlabelled Application) and one list", n, gets, lists, argocd.BatchThreshold, argocd.BatchThreshold-1)
	}

	// A write through the client: the next read does not use the list sent before it.
	a := base
	a.Name, a.Namespace = names[5], "batch-moved"
	if _, err := c.ApplyApplication(ctx, a); err != nil {
		t.Fatal(err)
	}
	log.take()
	read(names[5])
	if gets, lists := count(log.take()); gets+lists != 1 {
		t.Errorf("read after a write: %d GETs and %d lists, want one request", gets, lists)
	}
	if err := c.DeleteApplication(ctx, names[6], false); err != nil {
		t.Fatal(err)
	}
	if _, err := r.GetApplication(ctx, "batch", names[6]); !errors.Is(err, argocd.ErrNotFound) {
		t.Errorf("GetApplication(deleted %s) error = %v, want ErrNotFound", names[6], err)
	}

	// Past the TTL, concurrent reads share one new list.
	clock = clock.Add(argocd.BatchTTL + time.Second)
	log.take()
	var wg sync.WaitGroup
	for _, name := range names[:5] {
		wg.Go(func() { read(name) })
	}
	wg.Wait()
	if gets, lists := count(log.take()); gets != 0 || lists != 1 {
		t.Errorf("5 concurrent reads past the TTL: %d GETs and %d lists, want one list", gets, lists)
	}
}

package argocd_test

import (
	"context"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"

	"github.com/ferry-dev/terraform-provider-ferry/internal/argocd"
)

// BenchmarkReactionLatency measures how long Sync takes to return after Argo CD has made the
// application Synced at the digest and Healthy (as seen by an independent watch of the same
// Application). Target: median ≤ 0.5 s. It alternates between two bundles so every iteration is a
// real sync.
func BenchmarkReactionLatency(b *testing.B) {
	e := shared.Get(b)
	_, c, a1 := setupB(b, e, "latency", "1")
	_, _, a2 := setupB(b, e, "latency", "2")
	ctx := context.Background()
	dyn := e.Cluster.Dynamic(b)
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		a := a1
		if i%2 == 1 {
			a = a2
		}
		seen := make(chan time.Time, 1)
		wctx, cancel := context.WithCancel(ctx)
		w, err := dyn.Resource(argocd.ApplicationGVR).Namespace(e.ArgoCD.Namespace).Watch(wctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", a.Name).String()})
		if err != nil {
			b.Fatal(err)
		}
		go func() {
			for ev := range w.ResultChan() {
				app, ok := ev.Object.(*unstructured.Unstructured)
				if !ok {
					continue
				}
				s := argocd.StatusOf(app)
				if s.SyncStatus == "Synced" && s.HealthStatus == "Healthy" && s.Revision == a.Digest && s.LastOperation != nil && s.LastOperation.Phase == "Succeeded" && s.ReconciledAt >= s.LastOperation.FinishedAt {
					select {
					case seen <- time.Now():
					default:
					}
				}
			}
		}()
		if _, err := c.Sync(ctx, a, true, argocd.SyncOptions{Timeout: 2 * time.Minute}); err != nil {
			b.Fatal(err)
		}
		returned := time.Now()
		select {
		case at := <-seen:
			lat = append(lat, returned.Sub(at))
		case <-time.After(5 * time.Second):
			b.Fatalf("the watcher never saw the application Synced and Healthy at %s", a.Digest)
		}
		cancel()
		w.Stop()
	}
	b.StopTimer()
	slices.Sort(lat)
	median := lat[len(lat)/2]
	b.ReportMetric(median.Seconds(), "median-reaction-s")
	b.ReportMetric(lat[len(lat)-1].Seconds(), "max-reaction-s")
	b.Logf("reaction latency over %d syncs: median %s, max %s (target median ≤ 0.5s)", len(lat), median, lat[len(lat)-1])
}

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
		// The operation the application shows before this sync (by ferry's request id): the
		// watcher counts only a later one.
		prevRID := ""
		if live, err := dyn.Resource(argocd.ApplicationGVR).Namespace(e.ArgoCD.Namespace).Get(ctx, a.Name, metav1.GetOptions{}); err == nil {
			if op := argocd.StatusOf(live).LastOperation; op != nil {
				prevRID = op.RequestID
			}
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
				// Argo CD's own criteria for a new operation to exactly this digest.
				// An earlier operation does not count: the state at the start of the watch (the
				// digest the app is already at, when a run begins where the previous one ended), or
				// the previous iteration's operation while a comparison against a cluster cache that
				// has not seen its apply yet says Synced at this digest. Counting those made this
				// watcher report 0.3–1.4 s "latencies" before Sync's own operation had even started.
				s := argocd.StatusOf(app)
				opRevision, _, _ := unstructured.NestedString(app.Object, "status", "operationState", "operation", "sync", "revision")
				if s.SyncStatus == "Synced" && s.HealthStatus == "Healthy" && s.Revision == a.Digest && s.LastOperation != nil && s.LastOperation.Phase == "Succeeded" &&
					s.LastOperation.RequestID != prevRID && opRevision == a.Digest && s.ReconciledAt >= s.LastOperation.FinishedAt {
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
	p90 := lat[len(lat)*9/10]
	b.ReportMetric(p90.Seconds(), "p90-reaction-s")
	b.ReportMetric(lat[len(lat)-1].Seconds(), "max-reaction-s")
	b.Logf("reaction latency over %d syncs: median %s, p90 %s, max %s (target median ≤ 0.5s); all, sorted: %v", len(lat), median, p90, lat[len(lat)-1], lat)
}

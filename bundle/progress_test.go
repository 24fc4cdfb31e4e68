package bundle

import (
	"context"
	"math/rand"
	"sync"
	"testing"
)

// TestProgressBytes checks that a push reports the bytes of each layer as it is packed and uploaded,
// and a pull as it is downloaded and extracted, ending at the total of each.
func TestProgressBytes(t *testing.T) {
	big := make([]byte, 3<<20)
	rand.New(rand.NewSource(1)).Read(big)
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"ferry.yaml":      "apiVersion: ferry.dev/v1\nkind: Bundle\nname: a\nversion: 1.0.0\nmanifests: m\nplugins: p\n",
		"m/cm.yaml":       "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n",
		"p/random.bin":    string(big),
		"p/more/text.txt": "hello\n",
	})
	var mu sync.Mutex
	last := map[string]ProgressEvent{} // step/title → last bytes event
	record := func(ev ProgressEvent) {
		if ev.Action != ProgressBytes {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		key := ev.Step + " " + ev.Title
		if prev, ok := last[key]; ok && prev.Total != ev.Total {
			t.Errorf("%s: total changed from %d to %d", key, prev.Total, ev.Total)
		}
		last[key] = ev
	}
	c := newTestClient(t)
	ref := mustRef(t, LayoutPrefix+t.TempDir()+":1")
	res, err := Push(context.Background(), c, dir, ref, PushOptions{PackOptions: PackOptions{Offline: true, Created: testCreated}, OnProgress: record})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Pull(context.Background(), c, ref, t.TempDir(), PullOptions{OnProgress: record}); err != nil {
		t.Fatal(err)
	}
	sizes := map[string]int64{}
	for _, l := range res.Layers {
		sizes[l.Title] = l.Size
	}
	for key, want := range map[string]int64{
		"pack plugins.zip":          int64(len(big)) + 6,
		"pack manifests.tar.gz":     int64(len("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n")),
		"upload plugins.zip":        sizes["plugins.zip"],
		"upload manifests.tar.gz":   sizes["manifests.tar.gz"],
		"download plugins.zip":      sizes["plugins.zip"],
		"download manifests.tar.gz": sizes["manifests.tar.gz"],
	} {
		ev, ok := last[key]
		if !ok || ev.Total != want || ev.Bytes != want {
			t.Errorf("last %s event = %+v (reported %v), want %d of %d bytes", key, ev, ok, want, want)
		}
	}
	if ev, ok := last["extract plugins.zip"]; !ok || ev.Bytes < ev.Total {
		t.Errorf("last extract plugins.zip event = %+v (reported %v), want the whole archive read", ev, ok)
	}
}

package bundle

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-dev/terraform-provider-ferry/internal/testenv"
)

// TestInspectCache checks that with a cache, inspecting a digest or tag already seen costs exactly
// one request (the resolve), and that a corrupted cache entry is detected and refetched.
func TestInspectCache(t *testing.T) {
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	dir := t.TempDir()
	writeTree(t, dir, releaseFiles())
	ctx := context.Background()
	res, err := Push(ctx, clientFor(t, nil, ClientOptions{}), dir, mustRef(t, reg.Addr+"/shop/bundle:1"), PushOptions{PackOptions: PackOptions{Created: testCreated, Offline: true}})
	if err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	c := clientFor(t, nil, ClientOptions{CacheDir: cache})
	for _, ref := range []string{reg.Addr + "/shop/bundle@" + res.Digest, reg.Addr + "/shop/bundle:1"} {
		t.Run(ref, func(t *testing.T) {
			if _, err := Inspect(ctx, c, mustRef(t, ref)); err != nil {
				t.Fatal(err)
			}
			before := reg.Requests()
			info, err := Inspect(ctx, c, mustRef(t, ref))
			if err != nil || info.Digest != res.Digest {
				t.Fatalf("Inspect() = %v, %v", info, err)
			}
			if got := reg.RequestLog()[before:]; len(got) != 1 || !strings.HasPrefix(got[0], "HEAD /v2/shop/bundle/manifests/") {
				t.Errorf("cached Inspect() sent %v, want exactly one HEAD", got)
			}
		})
	}
	// A corrupted entry is not trusted.
	filepath.Walk(cache, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			os.WriteFile(p, []byte(`{"bogus":true}`), 0o644)
		}
		return nil
	})
	info, err := Inspect(ctx, c, mustRef(t, reg.Addr+"/shop/bundle:1"))
	if err != nil || info.Name != "shop" {
		t.Errorf("Inspect() with a corrupted cache = %v, %v, want the bundle", info, err)
	}
}

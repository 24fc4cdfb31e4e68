package argocd_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"

	"github.com/ferry-dev/terraform-provider-ferry/internal/argocd"
)

// TestTwoContentLayers: an artifact with two tar+gzip layers (as `oras push dir1 dir2` makes)
// leaves the app Healthy but with a ComparisonError before any sync; ferry must
// classify the sync as permanent with Argo CD's message, never as success because health is
// Healthy.
func TestTwoContentLayers(t *testing.T) {
	e, c, a := setup(t, "two-layers", map[string]string{"cm.yaml": cm("a", "1")})
	ctx := context.Background()
	repo := e.Registry.Repository(t, "engine/two-layers-raw")
	var layers []ocispec.Descriptor
	for i, name := range []string{"one", "two"} {
		var buf bytes.Buffer
		gz := gzip.NewWriter(&buf)
		tw := tar.NewWriter(gz)
		body := []byte(cm(name, "x"))
		tw.WriteHeader(&tar.Header{Name: name + ".yaml", Mode: 0o644, Size: int64(len(body)), ModTime: time.Unix(0, 0)})
		tw.Write(body)
		tw.Close()
		gz.Close()
		d := content.NewDescriptorFromBytes(ocispec.MediaTypeImageLayerGzip, buf.Bytes())
		d.Annotations = map[string]string{ocispec.AnnotationTitle: []string{"one.tar.gz", "two.tar.gz"}[i]}
		if err := repo.Push(ctx, d, bytes.NewReader(buf.Bytes())); err != nil {
			t.Fatal(err)
		}
		layers = append(layers, d)
	}
	m, err := oras.PackManifest(ctx, repo, oras.PackManifestVersion1_1, "application/vnd.example.manifests", oras.PackManifestOptions{Layers: layers})
	if err != nil {
		t.Fatal(err)
	}
	a.RepoURL = "oci://" + e.Registry.Addr + "/engine/two-layers-raw"
	a.Digest = m.Digest.String()
	_, err = c.Sync(ctx, a, true, argocd.SyncOptions{Timeout: 2 * time.Minute})
	var se *argocd.SyncError
	if !errors.As(err, &se) || se.Class != argocd.ClassPermanent || !strings.Contains(err.Error(), "expected only a single oci content layer, got 2") {
		t.Fatalf("Sync of a two-layer artifact = %v, want the permanent class with Argo CD's message", err)
	}
	t.Logf("classified: %v", err)
}

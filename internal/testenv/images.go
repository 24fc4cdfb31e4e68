package testenv

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry/remote"
)

// SeedFile is the path, inside the single layer of images pushed by
// PushImage and PushIndex, of the file whose content derives from the seed.
const SeedFile = "ferry/seed.txt"

// SeedLabel is the image config label that records the seed.
const SeedLabel = "dev.ferry.testenv.seed"

// SeedContent returns the content of SeedFile in an image built from seed for
// platform ("linux/amd64").
func SeedContent(seed, platform string) string {
	return fmt.Sprintf("ferry testenv image\nseed: %s\nplatform: %s\n", seed, platform)
}

// PushImage pushes a small but real single-platform (linux/amd64) OCI image
// to repo:tag and returns its manifest descriptor: config
// application/vnd.oci.image.config.v1+json with os, architecture and rootfs
// diff_ids, and one tar+gzip layer holding SeedFile with SeedContent(seed,
// "linux/amd64"). The same seed always yields the same digest.
func (r *Registry) PushImage(t testing.TB, repo, tag, seed string) ocispec.Descriptor {
	t.Helper()
	ctx, cancel := helperContext()
	defer cancel()
	rep := r.Repository(t, repo)
	desc, err := pushImage(ctx, rep, ocispec.Platform{OS: "linux", Architecture: "amd64"}, seed, tag)
	if err != nil {
		t.Fatalf("testenv: push image %s:%s: %v", repo, tag, err)
	}
	return desc
}

// PushIndex pushes a multi-platform OCI image index at repo:tag whose
// linux/amd64 and linux/arm64 entries are images built like PushImage's
// (pushed by digest, untagged), and returns the index descriptor.
func (r *Registry) PushIndex(t testing.TB, repo, tag, seed string) ocispec.Descriptor {
	t.Helper()
	ctx, cancel := helperContext()
	defer cancel()
	rep := r.Repository(t, repo)
	var manifests []ocispec.Descriptor
	for _, arch := range []string{"amd64", "arm64"} {
		platform := ocispec.Platform{OS: "linux", Architecture: arch}
		desc, err := pushImage(ctx, rep, platform, seed, "")
		if err != nil {
			t.Fatalf("testenv: push %s image for index %s:%s: %v", arch, repo, tag, err)
		}
		desc.Platform = &platform
		manifests = append(manifests, desc)
	}
	index, err := json.Marshal(ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: manifests,
	})
	if err != nil {
		t.Fatalf("testenv: encode index: %v", err)
	}
	desc := content.NewDescriptorFromBytes(ocispec.MediaTypeImageIndex, index)
	if err := rep.PushReference(ctx, desc, bytes.NewReader(index), tag); err != nil {
		t.Fatalf("testenv: push index %s:%s: %v", repo, tag, err)
	}
	return desc
}

// pushImage pushes the image for platform and seed, tagging it when tag is
// not empty, and returns its manifest descriptor.
func pushImage(ctx context.Context, rep *remote.Repository, platform ocispec.Platform, seed, tag string) (ocispec.Descriptor, error) {
	platformName := platform.OS + "/" + platform.Architecture
	layer, diffID, err := seedLayer(SeedContent(seed, platformName))
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	config, err := json.Marshal(ocispec.Image{
		Platform: platform,
		Config:   ocispec.ImageConfig{Labels: map[string]string{SeedLabel: seed}},
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{diffID}},
	})
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("encode config: %w", err)
	}
	layerDesc := content.NewDescriptorFromBytes(ocispec.MediaTypeImageLayerGzip, layer)
	configDesc := content.NewDescriptorFromBytes(ocispec.MediaTypeImageConfig, config)
	for _, blob := range []struct {
		desc ocispec.Descriptor
		data []byte
	}{{layerDesc, layer}, {configDesc, config}} {
		if err := rep.Push(ctx, blob.desc, bytes.NewReader(blob.data)); err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("push blob %s: %w", blob.desc.Digest, err)
		}
	}
	manifest, err := json.Marshal(ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    configDesc,
		Layers:    []ocispec.Descriptor{layerDesc},
	})
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("encode manifest: %w", err)
	}
	desc := content.NewDescriptorFromBytes(ocispec.MediaTypeImageManifest, manifest)
	if tag == "" {
		err = rep.Push(ctx, desc, bytes.NewReader(manifest))
	} else {
		err = rep.PushReference(ctx, desc, bytes.NewReader(manifest), tag)
	}
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("push manifest: %w", err)
	}
	return desc, nil
}

// seedLayer returns a deterministic gzipped tar holding SeedFile with body,
// and the digest of the uncompressed tar (the layer's diff_id).
func seedLayer(body string) ([]byte, digest.Digest, error) {
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	hdr := &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     SeedFile,
		Mode:     0o644,
		Size:     int64(len(body)),
		ModTime:  time.Unix(0, 0),
		Format:   tar.FormatUSTAR,
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return nil, "", fmt.Errorf("write layer tar header: %w", err)
	}
	if _, err := tw.Write([]byte(body)); err != nil {
		return nil, "", fmt.Errorf("write layer tar: %w", err)
	}
	if err := tw.Close(); err != nil {
		return nil, "", fmt.Errorf("close layer tar: %w", err)
	}
	var gzBuf bytes.Buffer
	zw := gzip.NewWriter(&gzBuf) // zero ModTime and no name: deterministic
	if _, err := zw.Write(tarBuf.Bytes()); err != nil {
		return nil, "", fmt.Errorf("compress layer: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, "", fmt.Errorf("compress layer: %w", err)
	}
	return gzBuf.Bytes(), digest.FromBytes(tarBuf.Bytes()), nil
}

// Package bundletest builds ferry bundles part by part, valid or not, for tests that play a hostile
// registry or a careless release pipeline. Nothing here checks what it is given: that is the point.
package bundletest

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"

	"github.com/ferry-dev/terraform-provider-ferry/bundle"
)

// Created is the creation time of every bundle built here.
const Created = "2025-11-26T00:00:00Z"

// Entry is a file of a test archive: a regular file with Body, or a symlink to Link.
type Entry struct {
	Name, Body, Link string
}

// TarGz returns a gzip-compressed tar of entries, names written as given.
func TarGz(entries ...Entry) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.Name, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(e.Body)), Format: tar.FormatPAX}
		if e.Link != "" {
			hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeSymlink, e.Link, 0
		}
		must(tw.WriteHeader(hdr))
		_, err := tw.Write([]byte(bodyOf(e)))
		must(err)
	}
	must(tw.Close())
	must(zw.Close())
	return buf.Bytes()
}

func bodyOf(e Entry) string {
	if e.Link != "" {
		return ""
	}
	return e.Body
}

// Zip returns a deflated zip of entries, names written as given.
func Zip(entries ...Entry) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		fh := &zip.FileHeader{Name: e.Name, Method: zip.Deflate}
		fh.SetMode(0o644)
		if e.Link != "" {
			fh.SetMode(0o777 | 1<<27) // fs.ModeSymlink
		}
		w, err := zw.CreateHeader(fh)
		must(err)
		if e.Link != "" {
			_, err = w.Write([]byte(e.Link))
		} else {
			_, err = w.Write([]byte(e.Body))
		}
		must(err)
	}
	must(zw.Close())
	return buf.Bytes()
}

// Bundle is a bundle's parts. Change any of them, then [Bundle.Store] it.
type Bundle struct {
	Manifest ocispec.Manifest
	Config   bundle.Config
	// RawConfig, when set, is stored as the config blob instead of Config.
	RawConfig []byte
	Blobs     map[digest.Digest][]byte
}

// Valid returns a bundle that ferry accepts: a manifests layer with deploy.yaml, a Terraform layer
// with main.tf and a plugins layer with migrate.sh.
func Valid() *Bundle {
	b := &Bundle{
		Manifest: ocispec.Manifest{
			Versioned:    specs.Versioned{SchemaVersion: 2},
			MediaType:    ocispec.MediaTypeImageManifest,
			ArtifactType: bundle.ArtifactTypeOpenTofu,
			Annotations:  map[string]string{ocispec.AnnotationCreated: Created},
		},
		Config: bundle.Config{
			FormatVersion: bundle.FormatVersion, Name: "shop", Version: "1.4.0", Created: Created,
			Images: []bundle.ImageLock{{Name: "api", Reference: "registry.example.com/shop/api:1.4.0",
				Repository: "registry.example.com/shop/api", Tag: "1.4.0", Digest: digest.FromString("api").String()}},
		},
		Blobs: map[digest.Digest][]byte{},
	}
	b.SetLayer(bundle.RoleManifests, "manifests.tar.gz", bundle.MediaTypeManifests,
		TarGz(Entry{Name: "deploy.yaml", Body: "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: shop\n"}))
	b.SetLayer(bundle.RoleTerraform, "terraform.zip", bundle.MediaTypeTerraform, Zip(Entry{Name: "main.tf", Body: "# module\n"}))
	b.SetLayer(bundle.RolePlugins, "plugins.zip", bundle.MediaTypePlugins, Zip(Entry{Name: "migrate.sh", Body: "#!/bin/sh\n"}))
	return b
}

// SetLayer replaces the layer titled title (or appends one) in the manifest and the config alike.
func (b *Bundle) SetLayer(role, title, mediaType string, data []byte) {
	d := digest.FromBytes(data)
	b.Blobs[d] = data
	desc := ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(data)),
		Annotations: map[string]string{ocispec.AnnotationTitle: title}}
	info := bundle.LayerInfo{Role: role, Title: title, MediaType: mediaType, Digest: d.String(), Size: desc.Size}
	for i, l := range b.Manifest.Layers {
		if l.Annotations[ocispec.AnnotationTitle] == title {
			b.Manifest.Layers[i], b.Config.Layers[i] = desc, info
			return
		}
	}
	b.Manifest.Layers = append(b.Manifest.Layers, desc)
	b.Config.Layers = append(b.Config.Layers, info)
}

// Store pushes the blobs, the config and the manifest to target and tags the manifest.
func (b *Bundle) Store(ctx context.Context, target oras.Target, tag string) (ocispec.Descriptor, error) {
	cfg := b.RawConfig
	if cfg == nil {
		var err error
		if cfg, err = json.Marshal(b.Config); err != nil {
			return ocispec.Descriptor{}, err
		}
	}
	m := b.Manifest
	m.Config = ocispec.Descriptor{MediaType: bundle.MediaTypeConfig, Digest: digest.FromBytes(cfg), Size: int64(len(cfg))}
	if err := push(ctx, target, m.Config, cfg); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("config: %w", err)
	}
	for _, l := range m.Layers {
		if data, ok := b.Blobs[l.Digest]; ok {
			if err := push(ctx, target, ocispec.Descriptor{MediaType: l.MediaType, Digest: l.Digest, Size: int64(len(data))}, data); err != nil {
				return ocispec.Descriptor{}, fmt.Errorf("layer %s: %w", l.Digest, err)
			}
		}
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	desc := content.NewDescriptorFromBytes(ocispec.MediaTypeImageManifest, raw)
	if err := push(ctx, target, desc, raw); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("manifest: %w", err)
	}
	return desc, target.Tag(ctx, desc, tag)
}

func push(ctx context.Context, target oras.Target, desc ocispec.Descriptor, data []byte) error {
	if ok, err := target.Exists(ctx, desc); err == nil && ok {
		return nil
	}
	return target.Push(ctx, desc, bytes.NewReader(data))
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

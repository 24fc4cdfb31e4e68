package bundle

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	godigest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry"
)

// Relocation is the relocation record: the bundle at its destination and where its images went.
type Relocation struct {
	Bundle string           `json:"bundle"`
	Source string           `json:"source"`
	Images []RelocatedImage `json:"images"`
}

// maxRelocationSize bounds a relocation record's manifest and layer.
const maxRelocationSize = 1 << 20

// attachRelocation pushes rec as a referrer of subject to dst, deterministically (created is
// the bundle's creation time): copying again finds it in place.
func attachRelocation(ctx context.Context, dst oras.Target, subject ocispec.Descriptor, rec Relocation, created string) (string, error) {
	data, err := json.Marshal(rec)
	if err != nil {
		return "", err
	}
	layer := content.NewDescriptorFromBytes(MediaTypeRelocation, data)
	if err := pushIfMissing(ctx, dst, layer, data); err != nil {
		return "", err
	}
	desc, err := oras.PackManifest(ctx, dst, oras.PackManifestVersion1_1, MediaTypeRelocation, oras.PackManifestOptions{
		Subject:             &subject,
		Layers:              []ocispec.Descriptor{layer},
		ManifestAnnotations: map[string]string{ocispec.AnnotationCreated: created},
	})
	if err != nil && !isAlreadyExists(err) {
		return "", err
	}
	return desc.Digest.String(), nil
}

// ReadRelocation returns the relocation record that the copy into ref's repository wrote for the
// bundle digest described by info, or nil when the bundle was not copied there. A record is not
// signed, so it is only believed as far as digests go: it must name this repository and digest,
// and each of its images must be one of the bundle's, with the same digest at both ends — a
// hostile record can point at another host, never at other content.
func ReadRelocation(ctx context.Context, c *Client, ref Reference, info *Info) (*Relocation, error) {
	src, err := c.target(ref, false)
	if err != nil {
		return nil, err
	}
	graph, ok := src.(content.ReadOnlyGraphStorage)
	if !ok || ref.IsLayout() {
		return nil, nil
	}
	wrap := func(what string, err error) error {
		return c.wrap(bundleClass, ref.Registry, fmt.Sprintf("%s: %s", ref, what), err)
	}
	subject := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: godigest.Digest(info.Digest), Size: info.Size}
	var records []ocispec.Descriptor
	if err := c.retry(ctx, func() (err error) {
		records, err = registry.Referrers(ctx, graph, subject, MediaTypeRelocation)
		return err
	}); err != nil {
		return nil, wrap("list relocation records", err)
	}
	want := ref.Name() + "@" + info.Digest
	for _, d := range records {
		rec, err := readRelocation(ctx, c, src, d)
		if err != nil {
			return nil, wrap("relocation record "+d.Digest.String(), err)
		}
		if rec.Bundle != want {
			continue
		}
		if err := checkRelocation(rec, info); err != nil {
			return nil, fmt.Errorf("%s: relocation record %s: %w", ref, d.Digest, err)
		}
		return rec, nil
	}
	return nil, nil
}

func readRelocation(ctx context.Context, c *Client, src oras.ReadOnlyTarget, d ocispec.Descriptor) (*Relocation, error) {
	if d.Size > maxRelocationSize {
		return nil, fmt.Errorf("%w: manifest of %d bytes", ErrNotBundle, d.Size)
	}
	raw, err := c.fetchSmall(ctx, src, d)
	if err != nil {
		return nil, err
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil || len(m.Layers) != 1 || m.Layers[0].MediaType != MediaTypeRelocation || m.Layers[0].Size > maxRelocationSize {
		return nil, fmt.Errorf("%w: not a manifest with one relocation layer", ErrNotBundle)
	}
	layer, err := c.fetchSmall(ctx, src, m.Layers[0])
	if err != nil {
		return nil, err
	}
	var rec Relocation
	if err := json.Unmarshal(layer, &rec); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotBundle, err)
	}
	return &rec, nil
}

// checkRelocation checks a record's images against the bundle's.
func checkRelocation(rec *Relocation, info *Info) error {
	if len(rec.Images) != len(info.Images) {
		return fmt.Errorf("%w: %d images, the bundle has %d", ErrDigestMismatch, len(rec.Images), len(info.Images))
	}
	for _, r := range rec.Images {
		i := slices.IndexFunc(info.Images, func(img ImageLock) bool { return img.Name == r.Name })
		if i < 0 {
			return fmt.Errorf("%w: image %q is not the bundle's", ErrDigestMismatch, r.Name)
		}
		pinned := info.Images[i].Pinned()
		_, toDigest, ok := strings.Cut(r.To, "@")
		if r.From != pinned || !ok || toDigest != info.Images[i].Digest {
			return fmt.Errorf("%w: image %s: %s -> %s, the bundle pins %s", ErrDigestMismatch, r.Name, r.From, r.To, pinned)
		}
	}
	return nil
}

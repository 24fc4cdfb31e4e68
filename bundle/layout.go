package bundle

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferry-dev/terraform-provider-ferry/internal/archive"
)

// IsContentLayer reports whether Argo CD treats a layer of this media type as its content layer.
func IsContentLayer(mediaType string) bool {
	return strings.HasSuffix(mediaType, "tar") || strings.HasSuffix(mediaType, "tar+gzip") || strings.HasSuffix(mediaType, "tar.gzip")
}

// CheckLayout checks a bundle manifest against the rules that let Argo CD, Flux and OpenTofu read
// it (docs/bundle-format.md): an image manifest with the ferry config, at most 10 layers, the
// manifests layer first and the only content layer, at most one archive/zip layer with the OpenTofu
// artifactType exactly when it exists, unique flat titles on every layer and an RFC 3339 created
// annotation. Violations wrap [ErrLayout].
func CheckLayout(m ocispec.Manifest) error {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrLayout, fmt.Sprintf(format, args...))
	}
	if m.MediaType != ocispec.MediaTypeImageManifest {
		return fail("manifest media type %s, want %q", archive.Quote(m.MediaType), ocispec.MediaTypeImageManifest)
	}
	if m.Config.MediaType != MediaTypeConfig {
		return fail("config media type %s, want %q", archive.Quote(m.Config.MediaType), MediaTypeConfig)
	}
	if len(m.Layers) > MaxLayers {
		return fail("%d layers; Argo CD accepts at most %d", len(m.Layers), MaxLayers)
	}
	titles := map[string]bool{}
	zips := 0
	for i, l := range m.Layers {
		title := l.Annotations[AnnotationTitle]
		switch {
		case title == "":
			return fail("layer %d (%s) has no %s annotation", i, archive.Quote(l.MediaType), AnnotationTitle)
		case len(title) > 255 || strings.IndexFunc(title, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0:
			return fail("layer %d title %s must be at most 255 bytes of printable characters", i, archive.Quote(title))
		case strings.ContainsAny(title, `/\`) || title == "." || title == "..":
			return fail("layer %d title %s must be a flat file name", i, archive.Quote(title))
		case titles[title]:
			return fail("layer %d title %s is used twice", i, archive.Quote(title))
		}
		titles[title] = true
		if _, ok := l.Annotations["io.deis.oras.content.unpack"]; ok {
			return fail("layer %s must not carry io.deis.oras.content.unpack", archive.Quote(title))
		}
		if IsContentLayer(l.MediaType) {
			if i != 0 || l.MediaType != MediaTypeManifests {
				return fail("layer %d %s (%s) would be a second content layer for Argo CD; only the first layer may be %s", i, archive.Quote(title), archive.Quote(l.MediaType), MediaTypeManifests)
			}
		}
		if l.MediaType == MediaTypeTerraform {
			zips++
		}
	}
	switch {
	case zips > 1:
		return fail("%d %s layers; OpenTofu accepts exactly one", zips, MediaTypeTerraform)
	case zips == 1 && m.ArtifactType != ArtifactTypeOpenTofu:
		return fail("artifactType %s with a Terraform layer, want %q", archive.Quote(m.ArtifactType), ArtifactTypeOpenTofu)
	case zips == 0 && m.ArtifactType != ArtifactTypeBundle:
		return fail("artifactType %s without a Terraform layer, want %q", archive.Quote(m.ArtifactType), ArtifactTypeBundle)
	}
	created, ok := m.Annotations[AnnotationCreated]
	if !ok {
		return fail("manifest has no %s annotation", AnnotationCreated)
	}
	if _, err := time.Parse(time.RFC3339, created); err != nil {
		return fail("%s %s is not RFC 3339", AnnotationCreated, archive.Quote(created))
	}
	return nil
}

// checkLayoutDir refuses a push into dir unless dir is missing, empty or already an OCI image layout
// (it has an oci-layout file): the layout store would otherwise write index.json, oci-layout and
// blobs/ among files that are not its own, turning an ordinary directory into a layout. Failures
// wrap [ErrOutputExists].
func checkLayoutDir(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		if fi, statErr := os.Stat(dir); statErr == nil && !fi.IsDir() {
			return fmt.Errorf("%s%s: %w: it is a file, not an OCI image layout directory; push into a new or empty directory", LayoutPrefix, dir, ErrOutputExists)
		}
		return fmt.Errorf("open layout %s: %w", dir, err)
	case len(entries) == 0:
		return nil
	}
	if _, err := os.Stat(filepath.Join(dir, ocispec.ImageLayoutFile)); err == nil {
		return nil
	}
	return fmt.Errorf("%s%s: %w: %s holds other files and no %s file, so it is not an OCI image layout; push into a new or empty directory, or an existing layout",
		LayoutPrefix, dir, ErrOutputExists, dir, ocispec.ImageLayoutFile)
}

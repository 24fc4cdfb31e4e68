package bundle

import (
	"fmt"
	"slices"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// The three functions below restate, for tests, how each consumer picks its part of an OCI artifact
// (see docs/bundle-format.md). They are written from the consumers' documented behaviour and
// checked against every manifest ferry produces.

// argoCDAllowed is Argo CD's default --oci-layer-media-types.
var argoCDAllowed = []string{"application/vnd.oci.image.layer.v1.tar", "application/vnd.oci.image.layer.v1.tar+gzip", "application/vnd.cncf.helm.chart.content.v1.tar+gzip"}

// argoCDContentLayer returns the layer Argo CD's OCI source extracts for path ".", or an error
// carrying Argo CD's own message.
func argoCDContentLayer(m ocispec.Manifest) (ocispec.Descriptor, error) {
	if m.Config.MediaType == "application/vnd.cncf.helm.config.v1+json" {
		return ocispec.Descriptor{}, fmt.Errorf("helm chart mode")
	}
	if len(m.Layers) > 10 {
		return ocispec.Descriptor{}, fmt.Errorf("expected no more than 10 oci layers, got %d", len(m.Layers))
	}
	var content []ocispec.Descriptor
	for _, l := range m.Layers {
		mt := l.MediaType
		if strings.HasSuffix(mt, "tar+gzip") || strings.HasSuffix(mt, "tar.gzip") || strings.HasSuffix(mt, "tar") {
			if !slices.Contains(argoCDAllowed, mt) {
				return ocispec.Descriptor{}, fmt.Errorf("oci layer media type %s is not in the list of allowed media types", mt)
			}
			content = append(content, l)
		}
	}
	if len(content) != 1 {
		return ocispec.Descriptor{}, fmt.Errorf("expected only a single oci content layer, got %d", len(content))
	}
	return content[0], nil
}

// fluxLayer returns the layer Flux's OCIRepository extracts: the first exact match of the layer
// selector's media type, or layers[0] without a selector.
func fluxLayer(m ocispec.Manifest, selector string) (ocispec.Descriptor, error) {
	if len(m.Layers) == 0 {
		return ocispec.Descriptor{}, fmt.Errorf("no layers")
	}
	if selector == "" {
		return m.Layers[0], nil
	}
	for _, l := range m.Layers {
		if l.MediaType == selector {
			return l, nil
		}
	}
	return ocispec.Descriptor{}, fmt.Errorf("no layer matching %s", selector)
}

// openTofuModuleLayer returns the layer OpenTofu's module installer extracts.
func openTofuModuleLayer(m ocispec.Manifest) (ocispec.Descriptor, error) {
	if m.MediaType != ocispec.MediaTypeImageManifest {
		return ocispec.Descriptor{}, fmt.Errorf("selected object is not an OCI image manifest")
	}
	if m.ArtifactType != "application/vnd.opentofu.modulepkg" {
		return ocispec.Descriptor{}, fmt.Errorf("unexpected artifact type %q", m.ArtifactType)
	}
	var zips []ocispec.Descriptor
	for _, l := range m.Layers {
		if l.MediaType == "archive/zip" {
			zips = append(zips, l)
		}
	}
	switch len(zips) {
	case 0:
		return ocispec.Descriptor{}, fmt.Errorf("no layers with media type archive/zip")
	case 1:
		return zips[0], nil
	}
	return ocispec.Descriptor{}, fmt.Errorf("multiple layers with media type archive/zip")
}

// checkConsumers checks every consumer rule on a bundle manifest with a manifests and a Terraform
// layer.
func checkConsumers(m ocispec.Manifest) error {
	argo, err := argoCDContentLayer(m)
	if err != nil {
		return fmt.Errorf("argo cd: %w", err)
	}
	if argo.Annotations[AnnotationTitle] != "manifests.tar.gz" {
		return fmt.Errorf("argo cd reads %s, want manifests.tar.gz", argo.Annotations[AnnotationTitle])
	}
	for _, sel := range []string{"", MediaTypeManifests} {
		flux, err := fluxLayer(m, sel)
		if err != nil {
			return fmt.Errorf("flux: %w", err)
		}
		if flux.Digest != argo.Digest {
			return fmt.Errorf("flux with selector %q reads %s, want the manifests layer", sel, flux.Annotations[AnnotationTitle])
		}
	}
	tofu, err := openTofuModuleLayer(m)
	if err != nil {
		return fmt.Errorf("opentofu: %w", err)
	}
	if tofu.Annotations[AnnotationTitle] != "terraform.zip" {
		return fmt.Errorf("opentofu reads %s, want terraform.zip", tofu.Annotations[AnnotationTitle])
	}
	for _, l := range m.Layers {
		if l.Annotations[AnnotationTitle] == "" {
			return fmt.Errorf("oras: untitled layer %s", l.Digest)
		}
	}
	return nil
}

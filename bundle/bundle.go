// Package bundle packs a release candidate directory into one OCI artifact and reads it back.
//
// A bundle is a single OCI image manifest whose layers are the Kubernetes manifests (the only tar
// layer, read by Argo CD and Flux), the Terraform module (the only archive/zip layer, read by
// OpenTofu) and the plugins, with a ferry config blob that locks every image to a digest. The format
// is specified in docs/bundle-format.md. Registry access, content verification and OCI layouts are
// oras-go v2's; this package adds the layout rules, reproducible packing and safe extraction.
package bundle

import (
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Media types and artifact types of a ferry bundle.
const (
	// MediaTypeConfig is the media type of the bundle config blob.
	MediaTypeConfig = "application/vnd.ferry.bundle.config.v1+json"
	// MediaTypeManifests is the media type of the manifests layer: the only content layer for
	// Argo CD and the layer Flux selects.
	MediaTypeManifests = ocispec.MediaTypeImageLayerGzip
	// MediaTypeTerraform is the media type of the Terraform module layer, as OpenTofu expects.
	MediaTypeTerraform = "archive/zip"
	// MediaTypePlugins is the media type of the plugins layer. It ends in none of "tar",
	// "tar+gzip" and "tar.gzip" and is not "archive/zip", so no consumer mistakes it for content.
	MediaTypePlugins = "application/vnd.ferry.plugins.v1+zip"

	// ArtifactTypeOpenTofu is the artifactType of a bundle with a Terraform layer, so OpenTofu can
	// install the module straight from the bundle.
	ArtifactTypeOpenTofu = "application/vnd.opentofu.modulepkg"
	// ArtifactTypeBundle is the artifactType of a bundle without a Terraform layer.
	ArtifactTypeBundle = "application/vnd.ferry.bundle.v1"

	// FormatVersion is the version of the config blob written by this package.
	FormatVersion = 1
	// MaxLayers is the most layers Argo CD accepts in an OCI source.
	MaxLayers = 10
)

// Standard annotation keys set on the bundle manifest.
const (
	AnnotationCreated     = ocispec.AnnotationCreated
	AnnotationVersion     = ocispec.AnnotationVersion
	AnnotationTitle       = ocispec.AnnotationTitle
	AnnotationDescription = ocispec.AnnotationDescription
	AnnotationSource      = ocispec.AnnotationSource
	AnnotationRevision    = ocispec.AnnotationRevision
)

// Layer roles, as recorded in the config blob and accepted by PullOptions.Only.
const (
	RoleManifests = "manifests"
	RoleTerraform = "terraform"
	RolePlugins   = "plugins"
)

// Roles lists the layer roles in layer order.
func Roles() []string { return []string{RoleManifests, RoleTerraform, RolePlugins} }

var roleTitles = map[string]string{
	RoleManifests: "manifests.tar.gz",
	RoleTerraform: "terraform.zip",
	RolePlugins:   "plugins.zip",
}

var roleMediaTypes = map[string]string{
	RoleManifests: MediaTypeManifests,
	RoleTerraform: MediaTypeTerraform,
	RolePlugins:   MediaTypePlugins,
}

// Config is the bundle config blob (media type [MediaTypeConfig]).
type Config struct {
	FormatVersion int               `json:"formatVersion"`
	Name          string            `json:"name"`
	Version       string            `json:"version"`
	Description   string            `json:"description,omitempty"`
	Created       string            `json:"created"`
	Source        string            `json:"source,omitempty"`
	Revision      string            `json:"revision,omitempty"`
	Images        []ImageLock       `json:"images"`
	Layers        []LayerInfo       `json:"layers"`
	Render        []RenderRecord    `json:"render,omitempty"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

// ImageLock is one image of the bundle resolved to a digest.
type ImageLock struct {
	// Name is the logical name from ferry.yaml.
	Name string `json:"name"`
	// Reference is the reference as written in ferry.yaml.
	Reference string `json:"reference"`
	// Repository is the normalized repository, e.g. docker.io/library/nginx.
	Repository string `json:"repository"`
	// Tag is the tag as written, if any.
	Tag string `json:"tag,omitempty"`
	// Digest is the resolved manifest or index digest.
	Digest string `json:"digest"`
	// MediaType is the media type of what Digest names; an index stays an index. Empty when the
	// image was digest-pinned and packed offline.
	MediaType string `json:"mediaType,omitempty"`
}

// Pinned returns the digest-pinned form repository@digest.
func (l ImageLock) Pinned() string { return l.Repository + "@" + l.Digest }

// LayerInfo records the role of a layer.
type LayerInfo struct {
	Role      string `json:"role"`
	Title     string `json:"title"`
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
}

// RenderRecord records a render step that ran at package time.
type RenderRecord struct {
	Name    string   `json:"name"`
	Command []string `json:"command"`
	Output  string   `json:"output"`
	Digest  string   `json:"digest"`
}

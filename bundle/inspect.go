package bundle

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"

	"github.com/ferry-dev/terraform-provider-ferry/internal/archive"
)

// maxManifestSize bounds the manifest and config blobs read from a registry.
const maxManifestSize = 4 << 20

// Info describes a bundle in a registry or layout.
type Info struct {
	// Reference is the repository name (host/repo or oci-layout:PATH).
	Reference string `json:"reference"`
	// Tag is the tag that was resolved, if any.
	Tag             string            `json:"tag,omitempty"`
	Digest          string            `json:"digest"`
	PinnedReference string            `json:"pinnedReference"`
	MediaType       string            `json:"mediaType"`
	ArtifactType    string            `json:"artifactType"`
	Size            int64             `json:"size"`
	Name            string            `json:"name"`
	Version         string            `json:"version"`
	Description     string            `json:"description,omitempty"`
	Created         string            `json:"created"`
	Source          string            `json:"source,omitempty"`
	Revision        string            `json:"revision,omitempty"`
	Images          []ImageLock       `json:"images"`
	Layers          []LayerInfo       `json:"layers"`
	Render          []RenderRecord    `json:"render,omitempty"`
	Annotations     map[string]string `json:"annotations"`
	// TerraformModuleSource is the source for a Terraform `module` block that installs the
	// Terraform layer (see [Client.TerraformModuleSource]); empty without one or for a layout.
	TerraformModuleSource string `json:"terraformModuleSource,omitempty"`
	// OpenTofuModuleSource is the source for an OpenTofu `module` block (see
	// [OpenTofuModuleSource]); empty without a Terraform layer or for a layout.
	OpenTofuModuleSource string `json:"opentofuModuleSource,omitempty"`
	// Referrers are the OCI referrers of the manifest (signatures, attestations), when listed
	// with [ListReferrers].
	Referrers []ReferrerInfo `json:"referrers,omitempty"`
	// Relocation is the relocation record of the copy into this repository, when read with
	// [ReadRelocation].
	Relocation *Relocation `json:"relocation,omitempty"`

	manifest ocispec.Manifest
	target   oras.ReadOnlyTarget
}

// Inspect resolves ref and reads the bundle's manifest and config, verifying both digests and the
// layout rules. A missing reference is [ErrNotFound]; an artifact that is not a ferry bundle is
// [ErrNotBundle].
func Inspect(ctx context.Context, c *Client, ref Reference) (*Info, error) {
	src, err := c.target(ref, false)
	if err != nil {
		return nil, err
	}
	wrap := func(what string, err error) error {
		return c.wrap(bundleClass, ref.Registry, fmt.Sprintf("%s: %s", ref, what), err)
	}
	var desc ocispec.Descriptor
	var raw []byte
	if c.opts.CacheDir == "" {
		// One request: GET the manifest by tag or digest.
		err = c.retry(ctx, func() (err error) {
			desc, raw, err = oras.FetchBytes(ctx, src, ref.Ref(), oras.FetchBytesOptions{MaxBytes: maxManifestSize})
			return err
		})
	} else {
		// With a cache, a digest already seen costs one request: the HEAD that resolves (and
		// proves the existence of) the reference.
		err = c.retry(ctx, func() (err error) {
			desc, err = src.Resolve(ctx, ref.Ref())
			return err
		})
		if err == nil && desc.Size > maxManifestSize {
			return nil, fmt.Errorf("%s: %w: manifest is %d bytes", ref, ErrNotBundle, desc.Size)
		}
		if err == nil {
			raw, err = c.fetchSmall(ctx, src, desc)
		}
	}
	if err != nil {
		return nil, wrap("fetch manifest", err)
	}
	return inspectManifest(ctx, c, src, ref, desc, raw)
}

// inspectManifest is [Inspect] of the manifest raw (desc) already read from src.
func inspectManifest(ctx context.Context, c *Client, src oras.ReadOnlyTarget, ref Reference, desc ocispec.Descriptor, raw []byte) (*Info, error) {
	wrap := func(what string, err error) error {
		return c.wrap(bundleClass, ref.Registry, fmt.Sprintf("%s: %s", ref, what), err)
	}
	if desc.MediaType != ocispec.MediaTypeImageManifest {
		return nil, fmt.Errorf("%s: %w: it is a %s, not an OCI image manifest", ref, ErrNotBundle, archive.Quote(desc.MediaType))
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("%s: %w: manifest: %v", ref, ErrNotBundle, err)
	}
	if m.MediaType == "" {
		m.MediaType = desc.MediaType
	}
	if m.Config.MediaType != MediaTypeConfig {
		return nil, fmt.Errorf("%s: %w: config media type is %s, want %q (push it with ferry bundle push)", ref, ErrNotBundle, archive.Quote(m.Config.MediaType), MediaTypeConfig)
	}
	if err := CheckLayout(m); err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	if m.Config.Size > maxManifestSize {
		return nil, fmt.Errorf("%s: %w: config is %d bytes", ref, ErrNotBundle, m.Config.Size)
	}
	cfgRaw, err := c.fetchSmall(ctx, src, m.Config)
	if err != nil {
		return nil, wrap("fetch config", err)
	}
	var cfg Config
	if err := json.Unmarshal(cfgRaw, &cfg); err != nil {
		return nil, fmt.Errorf("%s: %w: config: %v", ref, ErrNotBundle, err)
	}
	if cfg.FormatVersion != FormatVersion {
		return nil, fmt.Errorf("%s: %w: config format version %d; this ferry reads version %d", ref, ErrNotBundle, cfg.FormatVersion, FormatVersion)
	}
	if err := CheckConfig(m, cfg); err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	info := &Info{
		Reference:       ref.Name(),
		Tag:             ref.Tag,
		Digest:          desc.Digest.String(),
		PinnedReference: ref.Pinned(desc.Digest.String()),
		MediaType:       desc.MediaType,
		ArtifactType:    m.ArtifactType,
		Size:            desc.Size,
		Name:            cfg.Name,
		Version:         cfg.Version,
		Description:     cfg.Description,
		Created:         cfg.Created,
		Source:          cfg.Source,
		Revision:        cfg.Revision,
		Images:          cfg.Images,
		Render:          cfg.Render,
		Layers:          cfg.Layers,
		Annotations:     m.Annotations,
		manifest:        m,
		target:          src,
	}
	info.TerraformModuleSource = c.TerraformModuleSource(ref, info)
	info.OpenTofuModuleSource = OpenTofuModuleSource(ref, info)
	return info, nil
}

// CheckConfig checks a bundle's config against its manifest, so that nothing a reader does with the config
// (a role is a directory name to [Pull]) can be steered by a hostile bundle: the name, version and images lock
// are present, every image is pinned by a valid digest, and the layer list matches the manifest's layers
// exactly (same order, digest, size, media type and title), each with a distinct role of the closed set
// manifests, terraform, plugins that agrees with its media type. Violations wrap [ErrNotBundle] and name the
// config field.
func CheckConfig(m ocispec.Manifest, cfg Config) error {
	fail := func(field, format string, args ...any) error {
		return fmt.Errorf("%w: config field %s %s", ErrNotBundle, field, fmt.Sprintf(format, args...))
	}
	switch {
	case cfg.Name == "":
		return fail("name", "is missing")
	case cfg.Version == "":
		return fail("version", "is missing")
	case cfg.Images == nil:
		return fail("images", "is missing: every bundle has an images lock ([] when it pins no image)")
	}
	for i, img := range cfg.Images {
		field := fmt.Sprintf("images[%d]", i)
		switch {
		case img.Name == "":
			return fail(field+".name", "is missing")
		case img.Repository == "":
			return fail(field+".repository", "is missing")
		}
		if _, err := digest.Parse(img.Digest); err != nil {
			return fail(field+".digest", "%s is not a digest: %v", archive.Quote(img.Digest), err)
		}
	}
	if len(cfg.Layers) != len(m.Layers) {
		return fail("layers", "lists %d layers, the manifest has %d", len(cfg.Layers), len(m.Layers))
	}
	used := map[string]int{}
	for i, l := range cfg.Layers {
		field := fmt.Sprintf("layers[%d]", i)
		ml := m.Layers[i]
		mediaType, ok := roleMediaTypes[l.Role]
		switch {
		case !ok:
			return fail(field+".role", "%s is not a layer role; the roles are %s", archive.Quote(l.Role), strings.Join(Roles(), ", "))
		case used[l.Role] > 0:
			return fail(field+".role", "%q is also the role of layers[%d]; each role appears at most once", l.Role, used[l.Role]-1)
		case l.Digest != ml.Digest.String():
			return fail(field+".digest", "is %s, the manifest's layer %d is %s", archive.Quote(l.Digest), i, archive.Quote(ml.Digest.String()))
		case l.Size != ml.Size:
			return fail(field+".size", "is %d, the manifest's layer %d is %d bytes", l.Size, i, ml.Size)
		case l.MediaType != ml.MediaType:
			return fail(field+".mediaType", "is %s, the manifest's layer %d is %s", archive.Quote(l.MediaType), i, archive.Quote(ml.MediaType))
		case l.MediaType != mediaType:
			return fail(field+".role", "%q needs media type %s, the layer is %s", l.Role, mediaType, archive.Quote(l.MediaType))
		case l.Title != ml.Annotations[AnnotationTitle]:
			return fail(field+".title", "is %s, the manifest's layer %d is titled %s", archive.Quote(l.Title), i, archive.Quote(ml.Annotations[AnnotationTitle]))
		}
		used[l.Role] = i + 1
	}
	return nil
}

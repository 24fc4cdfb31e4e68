package bundle

import (
	"context"
	"encoding/json"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
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
		if class := bundleClass.of(err); class != nil {
			return fmt.Errorf("%s: %s: %s: %w: %v", ref, what, bundleClass.reason(class), class, trimErr(err))
		}
		return fmt.Errorf("%s: %s: %w", ref, what, err)
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
	if desc.MediaType != ocispec.MediaTypeImageManifest {
		return nil, fmt.Errorf("%s: %w: it is a %s, not an OCI image manifest", ref, ErrNotBundle, desc.MediaType)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("%s: %w: manifest: %v", ref, ErrNotBundle, err)
	}
	if m.MediaType == "" {
		m.MediaType = desc.MediaType
	}
	if m.Config.MediaType != MediaTypeConfig {
		return nil, fmt.Errorf("%s: %w: config media type is %q, want %q (push it with ferry bundle push)", ref, ErrNotBundle, m.Config.MediaType, MediaTypeConfig)
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
		Annotations:     m.Annotations,
		manifest:        m,
		target:          src,
	}
	if info.Images == nil {
		info.Images = []ImageLock{}
	}
	roles := map[string]string{}
	for _, l := range cfg.Layers {
		roles[l.Digest] = l.Role
	}
	for _, l := range m.Layers {
		role := roles[l.Digest.String()]
		if role == "" {
			role = roleOf(l.MediaType)
		}
		info.Layers = append(info.Layers, LayerInfo{Role: role, Title: l.Annotations[AnnotationTitle], MediaType: l.MediaType, Digest: l.Digest.String(), Size: l.Size})
	}
	return info, nil
}

func roleOf(mediaType string) string {
	for role, mt := range roleMediaTypes {
		if mt == mediaType {
			return role
		}
	}
	return ""
}

package bundle

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content/oci"
)

// Relocation (docs/air-gap.md): `ferry bundle copy` moves a bundle, every image it pins and every
// referrer of both (signatures, SBOM, provenance) to another registry or into an OCI image layout
// archive, digests unchanged. In a registry, the images go to DST/images/<original repository>
// (a port's ':' written as '-'), and a relocation record — a referrer of the bundle with artifact
// type MediaTypeRelocation — maps each original image reference to its relocated one.
const (
	// MediaTypeRelocation is the artifact type of a relocation record and the media type of its
	// one layer (a JSON [Relocation]).
	MediaTypeRelocation = "application/vnd.ferry.relocation.v1+json"
	// ArchiveBundleTag is the name of the bundle in an archive's index.json.
	ArchiveBundleTag = "bundle"
	// relocatedImagesDir is the repository below DST that holds the images.
	relocatedImagesDir = "images"
)

// ProgressMount: the target registry mounted a blob from another of its repositories instead of
// receiving it again.
const ProgressMount = "mount"

// CopyOptions tune [Copy], [CopyToArchive] and [CopyFromArchive].
type CopyOptions struct {
	// Concurrency is the number of blobs moved at once. Default 4.
	Concurrency int
	// OnProgress, if set, receives ProgressUpload, ProgressUploaded, ProgressSkip, ProgressMount and
	// ProgressTag events; the title is the image's name, "bundle" or the tag.
	OnProgress func(ProgressEvent)
	// Platforms, if set, limits each image index to the manifests of these platforms (the index
	// itself is copied whole, so its digest is unchanged; RelocatedImage says which platforms came).
	// The destination must accept an index whose other manifests it does not have.
	Platforms []ocispec.Platform
}

// RelocatedImage is where one image of a bundle was copied.
type RelocatedImage struct {
	// Name is the image's logical name from ferry.yaml.
	Name string `json:"name"`
	// From is the original reference, pinned: host/repo@sha256:….
	From string `json:"from"`
	// To is the relocated reference, pinned; empty in an archive, which holds the images itself.
	To string `json:"to,omitempty"`
	// Platforms are the platforms copied of an index, with CopyOptions.Platforms; Partial says
	// the index has others, which were not copied.
	Platforms []string `json:"platforms,omitempty"`
	Partial   bool     `json:"partial,omitempty"`
}

// CopyResult describes a copy.
type CopyResult struct {
	Source          string `json:"source"`
	Destination     string `json:"destination"`
	Digest          string `json:"digest"`
	PinnedReference string `json:"pinnedReference,omitempty"`
	// Tags were pointed at the bundle at the destination, last.
	Tags   []string         `json:"tags"`
	Images []RelocatedImage `json:"images"`
	// Referrers is the number of referrers of the bundle and its images copied or already there.
	Referrers int `json:"referrers"`
	// Copied, Skipped and Mounted count manifests and blobs: sent, already at the destination,
	// and mounted from another repository of the destination registry.
	Copied  int   `json:"copied"`
	Skipped int   `json:"skipped"`
	Mounted int   `json:"mounted"`
	Bytes   int64 `json:"bytes"`
	// Record is the digest of the relocation record (registry destinations only).
	Record string `json:"record,omitempty"`
	// MirrorConfig lists the registry mirror files written for the copy, if asked for.
	MirrorConfig []string `json:"mirrorConfig,omitempty"`
}

// copySource is where a copy reads: the bundle's repository and each image's.
type copySource struct {
	name     string
	ref      Reference
	host     string // the registry, for mounts from the source when the destination is on it
	bundle   oras.ReadOnlyGraphTarget
	image    func(repository string) (oras.ReadOnlyGraphTarget, error)
	imageDir func(repository string) string // the image's repository path on host
}

// copyDest is where a copy writes.
type copyDest struct {
	name  string
	host  string // empty for a layout
	repo  string
	tags  []string
	store oras.GraphTarget
	image func(repository string) (oras.GraphTarget, string, error) // target and repository name
}

// Copy copies the bundle src names, its images and all their referrers to dst, a registry
// repository or an OCI layout (oci-layout:PATH). See the package constants for the layout; the
// destination tag is dst's, else src's. Tags move last, so an interrupted copy leaves nothing new
// tagged, and a copy run again sends only what is missing.
func Copy(ctx context.Context, c *Client, src, dst Reference, opts CopyOptions) (*CopyResult, error) {
	s, err := c.registrySource(src)
	if err != nil {
		return nil, err
	}
	d, err := c.destination(dst, src.Tag)
	if err != nil {
		return nil, err
	}
	return c.copyBundle(ctx, s, d, opts)
}

// CopyToArchive copies the bundle src names, its images and their referrers into an OCI image
// layout archive (a tar) at file. The layout is staged in file+".partial", which a copy run again
// after an interruption resumes; the archive appears at file only when complete.
func CopyToArchive(ctx context.Context, c *Client, src Reference, file string, opts CopyOptions) (*CopyResult, error) {
	if _, err := os.Lstat(file); err == nil {
		return nil, fmt.Errorf("%s: %w: remove it or name another archive", file, ErrOutputExists)
	}
	s, err := c.registrySource(src)
	if err != nil {
		return nil, err
	}
	staging := file + ".partial"
	d, err := c.destination(Reference{Layout: staging}, src.Tag)
	if err != nil {
		return nil, err
	}
	d.name = "archive:" + file
	res, err := c.copyBundle(ctx, s, d, opts)
	if err != nil {
		return nil, err
	}
	if err := writeLayoutTar(staging, file); err != nil {
		return nil, fmt.Errorf("write archive %s: %w (the staged layout %s is kept: run the same copy again to finish)", file, err, staging)
	}
	if err := os.RemoveAll(staging); err != nil {
		return nil, err
	}
	return res, nil
}

// CopyFromArchive copies the bundle of the archive file (written by [CopyToArchive]), its images
// and their referrers to dst, a registry repository or an OCI layout. Every blob read from the
// archive is checked against its digest as it streams: a tampered archive fails with
// ErrDigestMismatch.
func CopyFromArchive(ctx context.Context, c *Client, file string, dst Reference, opts CopyOptions) (*CopyResult, error) {
	store, err := oci.NewFromTar(ctx, file)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: not an OCI image layout archive: %v", file, ErrNotBundle, err)
	}
	src := Reference{Layout: file, Tag: ArchiveBundleTag}
	tag := archiveTag(ctx, store)
	s := copySource{name: "archive:" + file, ref: src, bundle: store,
		image:    func(string) (oras.ReadOnlyGraphTarget, error) { return store, nil },
		imageDir: func(string) string { return "" }}
	d, err := c.destination(dst, tag)
	if err != nil {
		return nil, err
	}
	return c.copyBundle(ctx, s, d, opts)
}

// archiveTag is the bundle's other name in an archive's index.json: the tag it was copied from.
func archiveTag(ctx context.Context, store *oci.ReadOnlyStore) string {
	bundle, err := store.Resolve(ctx, ArchiveBundleTag)
	if err != nil {
		return ""
	}
	tag := ""
	_ = store.Tags(ctx, "", func(tags []string) error {
		for _, t := range tags {
			if d, err := store.Resolve(ctx, t); err == nil && t != ArchiveBundleTag && d.Digest == bundle.Digest {
				tag = t
			}
		}
		return nil
	})
	return tag
}

func (c *Client) registrySource(src Reference) (copySource, error) {
	t, err := c.target(src, false)
	if err != nil {
		return copySource{}, err
	}
	s := copySource{name: src.Name(), ref: src, host: src.Registry, bundle: t.(oras.ReadOnlyGraphTarget)}
	if src.IsLayout() {
		s.image = func(string) (oras.ReadOnlyGraphTarget, error) { return s.bundle, nil }
		s.imageDir = func(string) string { return "" }
		return s, nil
	}
	s.image = func(repository string) (oras.ReadOnlyGraphTarget, error) {
		host, path, _ := strings.Cut(repository, "/")
		return c.repository(host, path)
	}
	s.imageDir = func(repository string) string {
		if host, path, _ := strings.Cut(repository, "/"); host == src.Registry {
			return path
		}
		return ""
	}
	return s, nil
}

// destination opens dst; tag is the source's tag, used when dst has none.
func (c *Client) destination(dst Reference, tag string) (copyDest, error) {
	if dst.Digest != "" {
		return copyDest{}, fmt.Errorf("%s: %w: a copy destination takes a repository or a tag, not a digest", dst, ErrInvalidReference)
	}
	if dst.Tag != "" {
		tag = dst.Tag
	}
	if dst.IsLayout() {
		if err := checkLayoutDir(dst.Layout); err != nil {
			return copyDest{}, err
		}
		store, err := oci.New(dst.Layout)
		if err != nil {
			return copyDest{}, fmt.Errorf("open layout %s: %w", dst.Layout, err)
		}
		d := copyDest{name: dst.Name(), store: store, tags: []string{ArchiveBundleTag},
			image: func(string) (oras.GraphTarget, string, error) { return store, "", nil }}
		if tag != "" {
			d.tags = append(d.tags, tag)
		}
		return d, nil
	}
	repo, err := c.repository(dst.Registry, dst.Repository)
	if err != nil {
		return copyDest{}, err
	}
	d := copyDest{name: dst.Name(), host: dst.Registry, repo: dst.Repository, store: repo}
	if tag != "" {
		d.tags = []string{tag}
	}
	d.image = func(repository string) (oras.GraphTarget, string, error) {
		path := RelocatedImagePath(dst.Repository, repository)
		r, err := c.repository(dst.Registry, path)
		return r, dst.Registry + "/" + path, err
	}
	return d, nil
}

// RelocatedImagePath is the repository path, on the destination registry, of an image of
// repository (host/path) relocated next to a bundle in the repository bundleRepo: the host's ':'
// (a port) is written as '-', which no repository name may contain.
func RelocatedImagePath(bundleRepo, repository string) string {
	host, path, _ := strings.Cut(repository, "/")
	return RelocatedPrefix(bundleRepo, host) + "/" + path
}

// RelocatedPrefix is the repository path, on the destination registry, below which the images of
// the registry host are relocated next to a bundle in bundleRepo (see [RelocatedImagePath]).
func RelocatedPrefix(bundleRepo, host string) string {
	return bundleRepo + "/" + relocatedImagesDir + "/" + strings.ReplaceAll(host, ":", "-")
}

// copyBundle does the copy: images first, then the bundle with its referrers, the relocation
// record, and the tags last.
func (c *Client) copyBundle(ctx context.Context, s copySource, d copyDest, opts CopyOptions) (*CopyResult, error) {
	wrap := func(class registryClass, host, what string, err error) error {
		return c.wrap(class, host, fmt.Sprintf("copy %s to %s: %s", s.ref, d.name, what), err)
	}
	// A graph copy fails on either side: a refusal of the destination is the destination's.
	wrapCopy := func(class registryClass, host, what string, err error) error {
		var ce *oras.CopyError
		if errors.As(err, &ce) && ce.Origin == oras.CopyErrorOriginDestination {
			class, host = bundleClass, d.host
		}
		return wrap(class, host, what, err)
	}
	var desc ocispec.Descriptor
	var raw []byte
	if err := c.retry(ctx, func() (err error) {
		if desc, err = s.bundle.Resolve(ctx, s.ref.Ref()); err == nil {
			raw, err = c.fetchSmall(ctx, s.bundle, desc)
		}
		return err
	}); err != nil {
		return nil, wrap(bundleClass, s.host, "fetch manifest", err)
	}
	info, err := inspectManifest(ctx, c, s.bundle, s.ref, desc, raw)
	if err != nil {
		return nil, err
	}
	res := &CopyResult{Source: s.name, Destination: d.name, Digest: desc.Digest.String(), Images: []RelocatedImage{}, Tags: []string{}}
	cp := &grapher{c: c, opts: opts, res: res, placed: map[string][]string{}, verify: s.host == ""}

	type tagged struct {
		to   oras.GraphTarget
		root ocispec.Descriptor
		tag  string
	}
	var imageTags []tagged
	for _, img := range info.Images {
		from, err := s.image(img.Repository)
		if err != nil {
			return nil, err
		}
		imageHost, _, _ := strings.Cut(img.Repository, "/")
		root, err := imageRoot(ctx, c, from, img)
		if err != nil {
			return nil, wrap(imageClass, imageHost, fmt.Sprintf("image %s (%s)", img.Name, img.Pinned()), err)
		}
		to, toName, err := d.image(img.Repository)
		if err != nil {
			return nil, err
		}
		var mountFrom []string
		if dir := s.imageDir(img.Repository); dir != "" && s.host == d.host {
			mountFrom = append(mountFrom, dir)
		}
		r := RelocatedImage{Name: img.Name, From: img.Pinned()}
		toRepo := strings.TrimPrefix(toName, d.host+"/")
		if len(opts.Platforms) > 0 && isIndex(root.MediaType) {
			r.Platforms, r.Partial, err = c.copyPlatforms(ctx, cp, img.Name, from, to, toRepo, root, mountFrom, opts.Platforms)
		} else {
			err = cp.copy(ctx, img.Name, from, to, toRepo, root, mountFrom, nil)
		}
		if err != nil {
			return nil, wrapCopy(imageClass, imageHost, fmt.Sprintf("image %s (%s)", img.Name, img.Pinned()), err)
		}
		if toName != "" {
			r.To = toName + "@" + img.Digest
			if img.Tag != "" {
				imageTags = append(imageTags, tagged{to, root, img.Tag})
			}
		}
		res.Images = append(res.Images, r)
	}
	var mountFrom []string
	if s.host != "" && s.host == d.host {
		mountFrom = []string{s.ref.Repository}
	}
	if err := cp.copy(ctx, "bundle", s.bundle, d.store, d.repo, desc, mountFrom, nil); err != nil {
		return nil, wrapCopy(bundleClass, s.host, "bundle", err)
	}
	if d.host != "" {
		res.PinnedReference = d.name + "@" + res.Digest
		rec := Relocation{Bundle: res.PinnedReference, Source: s.ref.Name(), Images: res.Images}
		if err := c.retry(ctx, func() (err error) {
			res.Record, err = attachRelocation(ctx, d.store, desc, rec, info.Created)
			return err
		}); err != nil {
			return nil, wrap(bundleClass, d.host, "relocation record", err)
		}
	}
	for _, t := range imageTags {
		if err := c.retry(ctx, func() error { return t.to.Tag(ctx, t.root, t.tag) }); err != nil {
			return nil, wrap(imageClass, d.host, "tag image "+t.tag, err)
		}
	}
	for _, tag := range d.tags {
		if err := c.retry(ctx, func() error { return d.store.Tag(ctx, desc, tag) }); err != nil {
			return nil, wrap(bundleClass, d.host, "tag "+tag, err)
		}
		res.Tags = append(res.Tags, tag)
		if opts.OnProgress != nil {
			opts.OnProgress(ProgressEvent{Action: ProgressTag, Title: tag, Descriptor: desc})
		}
	}
	return res, nil
}

// imageRoot returns the descriptor of a pinned image in from, with its media type.
func imageRoot(ctx context.Context, c *Client, from oras.ReadOnlyTarget, img ImageLock) (ocispec.Descriptor, error) {
	var desc ocispec.Descriptor
	err := c.retry(ctx, func() (err error) {
		desc, err = from.Resolve(ctx, img.Digest)
		return err
	})
	if err != nil {
		return desc, err
	}
	if desc.Digest.String() != img.Digest {
		return desc, fmt.Errorf("%w: resolved to %s", ErrDigestMismatch, desc.Digest)
	}
	if img.MediaType != "" {
		desc.MediaType = img.MediaType
	}
	return desc, nil
}

package bundle

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/content/memory"

	"github.com/ferry-dev/terraform-provider-ferry/internal/archive"
)

// PackOptions contains parameters for [Pack].
type PackOptions struct {
	// Created is the creation time written into the bundle. If zero, SOURCE_DATE_EPOCH is used,
	// then the commit time of the git HEAD of the directory, then 1970-01-01T00:00:00Z, so the same
	// directory always gives the same digest.
	Created time.Time
	// Offline packs without contacting image registries: digest-pinned images are locked as
	// written and tag-only images are an error. Default value: false.
	Offline bool
	// TempDir holds the layer files while packing. Default: the system temp directory.
	TempDir string
}

// Packed is a bundle built on local disk, ready to be copied to a target. Close removes its files.
type Packed struct {
	Spec         *Spec
	Config       Config
	ConfigJSON   []byte
	Manifest     ocispec.Descriptor
	ManifestJSON []byte
	// Layers are the layer descriptors, manifests first.
	Layers []ocispec.Descriptor
	// Rewrites lists the image references pinned in the manifests.
	Rewrites []Rewrite

	blobs map[digest.Digest]string // layer digest → file
	tmp   string
	// sources are the files of each layer, which the SBOM lists (see [Packed.SBOM]).
	sources []layerSource
	// started is when packing started, the provenance's startedOn.
	started time.Time
}

// Close removes the layer files.
func (p *Packed) Close() error { return os.RemoveAll(p.tmp) }

// Blobs returns the config and layer descriptors, the order in which they are uploaded.
func (p *Packed) Blobs() []ocispec.Descriptor {
	return append([]ocispec.Descriptor{p.ConfigDescriptor()}, p.Layers...)
}

// ConfigDescriptor returns the descriptor of the config blob.
func (p *Packed) ConfigDescriptor() ocispec.Descriptor {
	return content.NewDescriptorFromBytes(MediaTypeConfig, p.ConfigJSON)
}

// Open returns the content of a blob or the manifest of p.
func (p *Packed) Open(desc ocispec.Descriptor) (io.ReadCloser, error) {
	switch desc.Digest {
	case p.Manifest.Digest:
		return io.NopCloser(bytes.NewReader(p.ManifestJSON)), nil
	case p.ConfigDescriptor().Digest:
		return io.NopCloser(bytes.NewReader(p.ConfigJSON)), nil
	}
	file, ok := p.blobs[desc.Digest]
	if !ok {
		return nil, fmt.Errorf("blob %s is not part of the bundle", desc.Digest)
	}
	return os.Open(file)
}

// Pack resolves the images of the release directory dir, runs its render steps, pins the image
// references of its manifests and builds the layers, config and manifest on local disk. It contacts
// only the image registries (not with opts.Offline) and never the destination; see [Push].
func Pack(ctx context.Context, c *Client, dir string, opts PackOptions) (*Packed, error) {
	return pack(ctx, c, dir, opts, nil)
}

// pack is [Pack] reporting to onProgress, if set, the bytes of each layer's files as they are
// archived (see [ProgressPack]).
func pack(ctx context.Context, c *Client, dir string, opts PackOptions, onProgress func(ProgressEvent)) (*Packed, error) {
	started := time.Now()
	spec, err := LoadSpec(dir)
	if err != nil {
		return nil, err
	}
	created, err := createdTime(dir, opts.Created)
	if err != nil {
		return nil, err
	}
	locks, err := ResolveImages(ctx, c, spec.Images, opts.Offline)
	if err != nil {
		return nil, err
	}
	rendered, err := runRender(ctx, dir, spec, created)
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(opts.TempDir, "ferry-pack-")
	if err != nil {
		return nil, err
	}
	p := &Packed{Spec: spec, blobs: map[digest.Digest]string{}, tmp: tmp, started: started}
	if err := p.build(ctx, dir, created, locks, rendered, onProgress); err != nil {
		_ = p.Close()
		return nil, err
	}
	return p, nil
}

// createdTime picks the creation time: explicit, SOURCE_DATE_EPOCH, git HEAD commit time, epoch.
func createdTime(dir string, explicit time.Time) (time.Time, error) {
	if !explicit.IsZero() {
		return explicit.UTC().Truncate(time.Second), nil
	}
	if v := os.Getenv("SOURCE_DATE_EPOCH"); v != "" {
		secs, err := strconv.ParseInt(v, 10, 64)
		if err != nil || secs < 0 {
			return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q: %w: must be a non-negative number of seconds", v, ErrInvalidSpec)
		}
		return time.Unix(secs, 0).UTC(), nil
	}
	if out, err := gitOutput(dir, "log", "-1", "--format=%ct"); err == nil {
		if secs, err := strconv.ParseInt(out, 10, 64); err == nil {
			return time.Unix(secs, 0).UTC(), nil
		}
	}
	return time.Unix(0, 0).UTC(), nil
}

func gitOutput(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0")
	out, err := cmd.Output()
	return strings.TrimSpace(string(out)), err
}

// gitRevision returns the HEAD commit of the work tree dir is in, or "".
func gitRevision(dir string) string {
	out, err := gitOutput(dir, "rev-parse", "--verify", "HEAD")
	if err != nil {
		return ""
	}
	return out
}

// zipEpoch is the earliest time a zip entry can carry.
var zipEpoch = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)

type layerSource struct {
	role  string
	files []archive.File
}

func (p *Packed) build(ctx context.Context, dir string, created time.Time, locks []ImageLock, rendered []renderOutput, onProgress func(ProgressEvent)) error {
	s := p.Spec
	var sources []layerSource
	if s.Manifests != "" || len(rendered) > 0 {
		files, rewrites, err := manifestFiles(dir, s, locks, rendered)
		if err != nil {
			return err
		}
		p.Rewrites = rewrites
		sources = append(sources, layerSource{RoleManifests, files})
	}
	for _, d := range []struct{ role, rel string }{{RoleTerraform, s.Terraform}, {RolePlugins, s.Plugins}} {
		if d.rel == "" {
			continue
		}
		files, err := collect(filepath.Join(dir, filepath.FromSlash(d.rel)), d.role)
		if err != nil {
			return err
		}
		sources = append(sources, layerSource{d.role, files})
	}
	p.sources = sources
	p.Layers = make([]ocispec.Descriptor, len(sources))
	files := make([]string, len(sources))
	g, _ := errgroup.WithContext(ctx)
	for i, src := range sources {
		g.Go(func() (err error) {
			p.Layers[i], files[i], err = p.writeLayer(src, created, onProgress)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for i, l := range p.Layers {
		p.blobs[l.Digest] = files[i]
	}

	p.Config = Config{
		FormatVersion: FormatVersion,
		Name:          s.Name,
		Version:       s.Version,
		Description:   s.Description,
		Created:       created.Format(time.RFC3339),
		Source:        s.Source,
		Revision:      s.Revision,
		Images:        locks,
		Annotations:   s.Annotations,
	}
	if p.Config.Images == nil {
		p.Config.Images = []ImageLock{}
	}
	for i, src := range sources {
		l := p.Layers[i]
		p.Config.Layers = append(p.Config.Layers, LayerInfo{Role: src.role, Title: l.Annotations[AnnotationTitle], MediaType: l.MediaType, Digest: l.Digest.String(), Size: l.Size})
	}
	for _, r := range rendered {
		p.Config.Render = append(p.Config.Render, r.record)
	}
	var err error
	if p.ConfigJSON, err = json.Marshal(p.Config); err != nil {
		return err
	}
	configDesc := p.ConfigDescriptor()

	annotations := map[string]string{}
	for k, v := range s.Annotations {
		annotations[k] = v
	}
	annotations[AnnotationCreated] = p.Config.Created
	annotations[AnnotationTitle] = s.Name
	annotations[AnnotationVersion] = s.Version
	setIf(annotations, AnnotationDescription, s.Description)
	setIf(annotations, AnnotationSource, s.Source)
	setIf(annotations, AnnotationRevision, s.Revision)
	artifactType := ArtifactTypeBundle
	if s.Terraform != "" {
		artifactType = ArtifactTypeOpenTofu
	}
	store := memory.New()
	p.Manifest, err = oras.PackManifest(ctx, store, oras.PackManifestVersion1_1, artifactType, oras.PackManifestOptions{
		Layers:              p.Layers,
		ConfigDescriptor:    &configDesc,
		ManifestAnnotations: annotations,
	})
	if err != nil {
		return fmt.Errorf("pack manifest: %w", err)
	}
	if p.ManifestJSON, err = content.FetchAll(ctx, store, p.Manifest); err != nil {
		return err
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(p.ManifestJSON, &m); err != nil {
		return err
	}
	if err := CheckLayout(m); err != nil {
		return err
	}
	// What ferry pushes, its own reader accepts.
	return CheckConfig(m, p.Config)
}

func setIf(m map[string]string, k, v string) {
	if v != "" {
		m[k] = v
	}
}

// collect lists the files of a layer directory, leaving out version-control and Terraform working
// state (.git, .terraform, *.tfstate, *.tfstate.backup).
func collect(root, role string) ([]archive.File, error) {
	files, err := archive.Collect(root)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", role, err)
	}
	kept := files[:0]
	for _, f := range files {
		if excluded(f.Path) {
			continue
		}
		if role == RoleTerraform && f.Mode&fs.ModeSymlink != 0 {
			// Terraform's and OpenTofu's module installers unpack a zip's links as regular files
			// holding the link's target: the installed module would not be the bundle's.
			return nil, fmt.Errorf("%w: %s/%s is a symbolic link; Terraform and OpenTofu install modules without links: copy the file it points to", ErrInvalidSpec, role, f.Path)
		}
		kept = append(kept, f)
	}
	return kept, nil
}

func excluded(p string) bool {
	for _, part := range strings.Split(p, "/") {
		if part == ".git" || part == ".terraform" {
			return true
		}
	}
	base := path.Base(p)
	return strings.HasSuffix(base, ".tfstate") || strings.HasSuffix(base, ".tfstate.backup")
}

// manifestFiles returns the manifests layer's files: the manifests directory with image references
// pinned, plus the render outputs.
func manifestFiles(dir string, s *Spec, locks []ImageLock, rendered []renderOutput) ([]archive.File, []Rewrite, error) {
	var files []archive.File
	if s.Manifests != "" {
		var err error
		if files, err = collect(filepath.Join(dir, filepath.FromSlash(s.Manifests)), RoleManifests); err != nil {
			return nil, nil, err
		}
	}
	have := map[string]bool{}
	for _, f := range files {
		have[f.Path] = true
	}
	for _, r := range rendered {
		if have[r.record.Output] {
			return nil, nil, fmt.Errorf("render %s: %w: output %q already exists in %s; choose another output path", r.record.Name, ErrRender, r.record.Output, s.Manifests)
		}
		files = append(files, archive.File{Path: r.record.Output, Mode: 0o644, Size: int64(len(r.data)), Open: bytesOpener(r.data)})
	}
	var rewrites []Rewrite
	for i, f := range files {
		ext := path.Ext(f.Path)
		if !f.Mode.IsRegular() || (ext != ".yaml" && ext != ".yml" && ext != ".json") {
			continue
		}
		data, err := readAll(f)
		if err != nil {
			return nil, nil, err
		}
		out, rw, err := RewriteImages(data, f.Path, locks)
		if err != nil {
			return nil, nil, err
		}
		rewrites = append(rewrites, rw...)
		files[i].Size = int64(len(out))
		files[i].Open = bytesOpener(out)
	}
	return files, rewrites, nil
}

func bytesOpener(b []byte) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
}

func readAll(f archive.File) ([]byte, error) {
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// writeLayer archives one layer into a temp file and returns its descriptor. The bytes of its files
// are counted as the archiver reads them: their sizes are known from the walk, the archive's is not
// until it is written.
func (p *Packed) writeLayer(src layerSource, created time.Time, onProgress func(ProgressEvent)) (ocispec.Descriptor, string, error) {
	title := roleTitles[src.role]
	var total int64
	for _, f := range src.files {
		if f.Mode.IsRegular() {
			total += f.Size
		}
	}
	if m := newMeter(onProgress, ProgressPack, title, total); m != nil {
		counted := make([]archive.File, len(src.files))
		for i, f := range src.files {
			if open := f.Open; open != nil {
				f.Open = func() (io.ReadCloser, error) {
					rc, err := open()
					if err != nil {
						return nil, err
					}
					return m.readCloser(rc), nil
				}
			}
			counted[i] = f
		}
		src.files = counted
	}
	f, err := os.Create(filepath.Join(p.tmp, title))
	if err != nil {
		return ocispec.Descriptor{}, "", err
	}
	defer f.Close()
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(f, h)}
	// Archive entries carry the creation time, but never earlier than zip's 1980 epoch.
	opts := archive.Options{ModTime: created}
	if created.Before(zipEpoch) {
		opts.ModTime = zipEpoch
	}
	if src.role == RoleManifests {
		err = archive.WriteTarGz(cw, src.files, opts)
	} else {
		err = archive.WriteZip(cw, src.files, opts)
	}
	if err != nil {
		return ocispec.Descriptor{}, "", fmt.Errorf("%s layer: %w", src.role, err)
	}
	if err := f.Close(); err != nil {
		return ocispec.Descriptor{}, "", err
	}
	return ocispec.Descriptor{
		MediaType:   roleMediaTypes[src.role],
		Digest:      digest.NewDigest(digest.SHA256, h),
		Size:        cw.n,
		Annotations: map[string]string{AnnotationTitle: title},
	}, f.Name(), nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}

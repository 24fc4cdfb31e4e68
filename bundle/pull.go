package bundle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
	"oras.land/oras-go/v2/content"

	"github.com/ferry-dev/terraform-provider-ferry/internal/archive"
)

// LockFileName is the file [Pull] writes next to the extracted layers.
const LockFileName = "ferry.lock.json"

// Extraction errors returned (wrapped, with the entry name) by [Pull].
var (
	// ErrUnsafeArchive reports an absolute path, "..", a link leaving the directory, a device file or
	// another entry that must not be extracted.
	ErrUnsafeArchive = archive.ErrUnsafeEntry
	// ErrArchiveLimit reports an archive over the entry-count or size limits.
	ErrArchiveLimit = archive.ErrLimitExceeded
)

// Limits bounds what [Pull] extracts. Zero fields mean the defaults: 100000 entries, 1 GiB per file,
// 4 GiB in all, per layer.
type Limits struct {
	MaxEntries   int
	MaxFileSize  int64
	MaxTotalSize int64
}

// PullOptions contains parameters for [Pull].
type PullOptions struct {
	// Only selects layer roles (see [Roles]); empty means every layer of the bundle.
	Only []string
	// Limits bounds extraction.
	Limits Limits
	// Concurrency limits concurrent downloads. If <= 0, 3 is used.
	Concurrency int
	// OnProgress, if set, is called for each blob. It may be called concurrently.
	OnProgress func(ProgressEvent)
}

// Lock is the content of ferry.lock.json: what was pulled, pinned.
type Lock struct {
	LockVersion int         `json:"lockVersion"`
	Bundle      LockBundle  `json:"bundle"`
	Images      []ImageLock `json:"images"`
}

// LockBundle identifies the pulled bundle.
type LockBundle struct {
	Reference       string   `json:"reference"`
	Digest          string   `json:"digest"`
	PinnedReference string   `json:"pinnedReference"`
	Name            string   `json:"name"`
	Version         string   `json:"version"`
	Created         string   `json:"created"`
	Source          string   `json:"source,omitempty"`
	Revision        string   `json:"revision,omitempty"`
	Roles           []string `json:"roles"`
}

// PullResult describes a pull.
type PullResult struct {
	*Info
	// Dir is the output directory; each role is extracted into Dir/<role>.
	Dir string `json:"dir"`
	// Roles are the extracted roles.
	Roles []string `json:"roles"`
	// LockFile is the path of ferry.lock.json.
	LockFile string `json:"lockFile"`
}

// Pull fetches the bundle ref, verifies every digest and extracts the selected layers into
// dir/manifests, dir/terraform and dir/plugins, refusing unsafe entries and archive bombs, then writes
// dir/ferry.lock.json. Layers are extracted into a staging directory inside dir and moved into place
// only when all of them succeeded; existing non-empty role directories are never overwritten.
func Pull(ctx context.Context, c *Client, ref Reference, dir string, opts PullOptions) (*PullResult, error) {
	for _, r := range opts.Only {
		if !slices.Contains(Roles(), r) {
			return nil, fmt.Errorf("only: %w: unknown layer %q; use %s", ErrInvalidReference, r, strings.Join(Roles(), ", "))
		}
	}
	info, err := Inspect(ctx, c, ref)
	if err != nil {
		return nil, err
	}
	var layers []LayerInfo
	for _, l := range info.Layers {
		if len(opts.Only) == 0 || slices.Contains(opts.Only, l.Role) {
			layers = append(layers, l)
		}
	}
	for _, r := range opts.Only {
		if !slices.ContainsFunc(layers, func(l LayerInfo) bool { return l.Role == r }) {
			return nil, fmt.Errorf("%s: %w: the bundle has no %s layer", ref, ErrNotFound, r)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	for _, l := range layers {
		if entries, err := os.ReadDir(filepath.Join(dir, l.Role)); err == nil && len(entries) > 0 {
			return nil, fmt.Errorf("%s already exists and is not empty; pull into another directory or remove it", filepath.Join(dir, l.Role))
		}
	}
	staging, err := os.MkdirTemp(dir, ".ferry-pull-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(staging)

	limits := archive.Limits{MaxEntries: opts.Limits.MaxEntries, MaxFileSize: opts.Limits.MaxFileSize, MaxTotalSize: opts.Limits.MaxTotalSize}
	concurrency := opts.Concurrency
	if concurrency <= 0 {
		concurrency = 3
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(concurrency)
	for _, l := range layers {
		g.Go(func() error {
			desc := layerDescriptor(info.manifest, l.Digest)
			if opts.OnProgress != nil {
				opts.OnProgress(ProgressEvent{Action: ProgressDownload, Title: l.Title, Descriptor: desc})
			}
			if err := c.retry(gctx, func() error {
				_ = os.RemoveAll(filepath.Join(staging, l.Role))
				return fetchAndExtract(gctx, info, desc, l.Role, staging, limits)
			}); err != nil {
				if class := bundleClass.of(err); class != nil {
					return fmt.Errorf("%s: layer %s: %s: %w: %v", ref, l.Title, bundleClass.reason(class), class, trimErr(err))
				}
				return fmt.Errorf("%s: layer %s: %w", ref, l.Title, err)
			}
			if opts.OnProgress != nil {
				opts.OnProgress(ProgressEvent{Action: ProgressDone, Title: l.Title, Descriptor: desc})
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	res := &PullResult{Info: info, Dir: dir, LockFile: filepath.Join(dir, LockFileName)}
	for _, l := range layers {
		_ = os.Remove(filepath.Join(dir, l.Role)) // an empty directory may be replaced
		if err := os.Rename(filepath.Join(staging, l.Role), filepath.Join(dir, l.Role)); err != nil {
			return nil, err
		}
		res.Roles = append(res.Roles, l.Role)
	}
	if res.Roles == nil {
		res.Roles = []string{}
	}
	lock := Lock{
		LockVersion: 1,
		Bundle: LockBundle{
			Reference: info.Reference, Digest: info.Digest, PinnedReference: info.PinnedReference,
			Name: info.Name, Version: info.Version, Created: info.Created, Source: info.Source, Revision: info.Revision,
			Roles: res.Roles,
		},
		Images: info.Images,
	}
	data, err := json.MarshalIndent(lock, "", "  ")
	if err != nil {
		return nil, err
	}
	tmpLock := filepath.Join(staging, LockFileName)
	if err := os.WriteFile(tmpLock, append(data, '\n'), 0o644); err != nil {
		return nil, err
	}
	if err := os.Rename(tmpLock, res.LockFile); err != nil {
		return nil, err
	}
	return res, nil
}

func layerDescriptor(m ocispec.Manifest, d string) ocispec.Descriptor {
	for _, l := range m.Layers {
		if l.Digest.String() == d {
			return l
		}
	}
	return ocispec.Descriptor{}
}

// fetchAndExtract downloads one layer, verifying its digest and size, and extracts it into
// staging/role. A tar+gzip layer is extracted while it streams and only kept when the digest
// verifies; a zip layer is first written to a verified temporary file.
func fetchAndExtract(ctx context.Context, info *Info, desc ocispec.Descriptor, role, staging string, limits archive.Limits) error {
	rc, err := info.target.Fetch(ctx, desc)
	if err != nil {
		return err
	}
	defer rc.Close()
	vr := content.NewVerifyReader(rc, desc)
	dest := filepath.Join(staging, role)
	if desc.MediaType == MediaTypeManifests {
		if err := archive.ExtractTarGz(vr, dest, limits); err != nil {
			if verr := drainVerify(vr); verr != nil {
				return verr
			}
			return err
		}
		return drainVerify(vr)
	}
	f, err := os.CreateTemp(staging, "blob-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if _, err := io.Copy(f, vr); err != nil {
		return mismatch(err)
	}
	if err := vr.Verify(); err != nil {
		return mismatch(err)
	}
	return archive.ExtractZip(f, desc.Size, dest, limits)
}

// drainVerify reads what the extractor left (gzip trailer, tar padding) and verifies the digest.
func drainVerify(vr *content.VerifyReader) error {
	if _, err := io.Copy(io.Discard, vr); err != nil {
		return mismatch(err)
	}
	return mismatch(vr.Verify())
}

func mismatch(err error) error {
	if errors.Is(err, content.ErrMismatchedDigest) || errors.Is(err, content.ErrTrailingData) {
		return fmt.Errorf("%w: %v", ErrDigestMismatch, err)
	}
	return err
}

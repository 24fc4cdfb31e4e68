package bundle

import (
	"context"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
)

// fetchSmall returns the content of a manifest or config blob, from the client's disk cache when
// it holds it (verified against the digest) and otherwise from src, storing it in the cache.
func (c *Client) fetchSmall(ctx context.Context, src oras.ReadOnlyTarget, desc ocispec.Descriptor) ([]byte, error) {
	path := c.cachePath(desc.Digest)
	if path != "" {
		if raw, err := os.ReadFile(path); err == nil && int64(len(raw)) == desc.Size && desc.Digest.Validate() == nil && desc.Digest.Algorithm().FromBytes(raw) == desc.Digest {
			return raw, nil
		}
	}
	var raw []byte
	err := c.retry(ctx, func() (err error) {
		raw, err = content.FetchAll(ctx, src, desc)
		return err
	})
	if err != nil {
		return nil, err
	}
	if path != "" {
		// The cache is an optimisation: failing to write it never fails the read.
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err == nil {
			if f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"); err == nil {
				_, werr := f.Write(raw)
				if cerr := f.Close(); werr == nil && cerr == nil {
					_ = os.Rename(f.Name(), path)
				}
				_ = os.Remove(f.Name())
			}
		}
	}
	return raw, nil
}

func (c *Client) cachePath(d digest.Digest) string {
	if c.opts.CacheDir == "" || d.Validate() != nil {
		return ""
	}
	return filepath.Join(c.opts.CacheDir, "blobs", d.Algorithm().String(), d.Encoded())
}

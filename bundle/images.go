package bundle

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sync/errgroup"
)

// ResolveImages resolves every image of the spec to a digest against its own registry, with the
// client's credentials, and returns the locks sorted by name. An image that does not resolve fails
// with its name and a wrapped [ErrImageNotFound], [ErrImageUnauthorized] or [ErrImageUnreachable].
// With offline set, digest-pinned images are locked without contacting a registry and tag-only images
// fail with [ErrOfflineTag].
func ResolveImages(ctx context.Context, c *Client, images map[string]string, offline bool) ([]ImageLock, error) {
	names := sortedKeys(images)
	locks := make([]ImageLock, len(names))
	errs := make([]error, len(names))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i, name := range names {
		g.Go(func() error {
			locks[i], errs[i] = resolveImage(gctx, c, name, images[name], offline)
			return nil
		})
	}
	_ = g.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return locks, nil
}

func resolveImage(ctx context.Context, c *Client, name, written string, offline bool) (ImageLock, error) {
	ref, err := ParseImageReference(written)
	if err != nil {
		return ImageLock{}, fmt.Errorf("image %s: %w", name, err)
	}
	lock := ImageLock{Name: name, Reference: written, Repository: ref.Repository(), Tag: ref.Tag, Digest: ref.Digest}
	if offline {
		if ref.Digest == "" {
			return ImageLock{}, fmt.Errorf("image %s (%s): %w; pin it by digest or push without --offline", name, written, ErrOfflineTag)
		}
		return lock, nil
	}
	host := ref.Registry
	if host == "docker.io" {
		host = "registry-1.docker.io"
	}
	repo, err := c.repository(host, ref.Path)
	if err != nil {
		return ImageLock{}, fmt.Errorf("image %s (%s): %w", name, written, err)
	}
	target := ref.Digest
	if target == "" {
		target = ref.Tag
	}
	err = c.retry(ctx, func() error {
		desc, err := repo.Resolve(ctx, target)
		if err == nil {
			lock.Digest, lock.MediaType = desc.Digest.String(), desc.MediaType
		}
		return err
	})
	if err != nil {
		return ImageLock{}, c.wrap(imageClass, host, fmt.Sprintf("image %s (%s)", name, written), err)
	}
	return lock, nil
}

// trimErr shortens oras-go's long request errors to their cause, keeping the number of attempts.
func trimErr(err error) string {
	if a, ok := err.(*attemptsError); ok {
		return trimErr(a.err) + a.suffix()
	}
	s := err.Error()
	if i := strings.LastIndex(s, "\": "); i >= 0 && i+3 < len(s) {
		return s[i+3:]
	}
	return s
}

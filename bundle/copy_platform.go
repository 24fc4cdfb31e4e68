package bundle

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
)

// ParsePlatform parses os/arch[/variant], as `--platform` takes it.
func ParsePlatform(s string) (ocispec.Platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || slices.Contains(parts, "") {
		return ocispec.Platform{}, fmt.Errorf("platform %q: want os/arch or os/arch/variant, e.g. linux/amd64", s)
	}
	p := ocispec.Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}

func platformString(p *ocispec.Platform) string {
	if p == nil {
		return ""
	}
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// platformMatcher accepts an index entry whose platform is one of want (a variant only when
// asked for).
func platformMatcher(want []ocispec.Platform) func(ocispec.Descriptor) bool {
	return func(d ocispec.Descriptor) bool {
		return d.Platform != nil && slices.ContainsFunc(want, func(w ocispec.Platform) bool {
			return w.OS == d.Platform.OS && w.Architecture == d.Platform.Architecture && (w.Variant == "" || w.Variant == d.Platform.Variant)
		})
	}
}

// copyPlatforms copies an image index with only the manifests of the platforms opts names: each
// of those (with its referrers) first, then the index itself with its referrers, so that a later
// copy with other platforms adds theirs next to an index already in place. It returns the
// platforms copied and whether others were left out. An index that has none of them is an error.
func (c *Client) copyPlatforms(ctx context.Context, g *grapher, title string, from oras.ReadOnlyGraphTarget, to oras.GraphTarget, toRepo string, root ocispec.Descriptor, mountFrom []string, want []ocispec.Platform) ([]string, bool, error) {
	var raw []byte
	if err := c.retry(ctx, func() (err error) {
		raw, err = c.fetchSmall(ctx, from, root)
		return err
	}); err != nil {
		return nil, false, err
	}
	var idx ocispec.Index
	if err := json.Unmarshal(raw, &idx); err != nil {
		return nil, false, fmt.Errorf("%w: index %s: %v", ErrDigestMismatch, root.Digest, err)
	}
	only := platformMatcher(want)
	var copied, all []string
	for _, m := range idx.Manifests {
		if m.Platform == nil {
			continue
		}
		all = append(all, platformString(m.Platform))
		if !only(m) {
			continue
		}
		if err := g.copy(ctx, title+" "+platformString(m.Platform), from, to, toRepo, m, mountFrom, only); err != nil {
			return nil, false, err
		}
		copied = append(copied, platformString(m.Platform))
	}
	if len(copied) == 0 {
		return nil, false, fmt.Errorf("%w: the index has no manifest for %s (it has %s)", ErrImageNotFound, strings.Join(platformStrings(want), ", "), strings.Join(all, ", "))
	}
	if err := g.copy(ctx, title, from, to, toRepo, root, mountFrom, only); err != nil {
		return nil, false, err
	}
	return copied, len(copied) < len(all), nil
}

func platformStrings(ps []ocispec.Platform) []string {
	var out []string
	for _, p := range ps {
		out = append(out, platformString(&p))
	}
	return out
}

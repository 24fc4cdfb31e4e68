package bundle

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// The bundle's Terraform module as `terraform init` and `tofu init` install it, and the check that
// what they installed is byte for byte the module in the bundle.

var (
	// ErrModuleMismatch reports an installed module whose files differ from the bundle's Terraform
	// layer.
	ErrModuleMismatch = errors.New("installed module differs from the bundle's Terraform layer")
	// ErrModuleNotInstalled reports a module key that `terraform init` has not installed.
	ErrModuleNotInstalled = errors.New("module not installed")
)

// TerraformLayer returns the bundle's Terraform layer, or false when it has none.
func (i *Info) TerraformLayer() (LayerInfo, bool) {
	for _, l := range i.Layers {
		if l.Role == RoleTerraform {
			return l, true
		}
	}
	return LayerInfo{}, false
}

// TerraformModuleSource returns the source address with which a Terraform `module` block installs
// the bundle's Terraform layer straight from the registry, with no ferry binary on the machine:
// the layer's blob URL in the registry API, `https://HOST/v2/REPO/blobs/sha256:…?archive=zip`
// (`http://` for a plain-HTTP registry). Terraform's HTTP module source downloads it and unpacks
// it as a zip; the registry serves the blob by its digest. Empty for a layout reference, a bundle
// without a Terraform layer, or Docker Hub. Terraform's HTTP source sends credentials only from a `.netrc` file
// (docs/terraform-module.md).
func (c *Client) TerraformModuleSource(ref Reference, info *Info) string {
	l, ok := info.TerraformLayer()
	// Docker Hub answers every blob read, anonymous ones too, only after a token exchange that
	// Terraform's HTTP source cannot make.
	if ref.IsLayout() || !ok || ref.Registry == "docker.io" {
		return ""
	}
	host, scheme := ref.Registry, "https"
	if c.plainHTTP(ref.Registry) {
		scheme = "http"
	}
	return scheme + "://" + host + "/v2/" + ref.Repository + "/blobs/" + l.Digest + "?archive=zip"
}

// OpenTofuModuleSource returns `oci://HOST/REPO?digest=sha256:…`, the source address with which
// OpenTofu installs the bundle's Terraform layer through its OCI module source. Empty for a
// layout reference or a bundle without a Terraform layer.
func OpenTofuModuleSource(ref Reference, info *Info) string {
	if _, ok := info.TerraformLayer(); ref.IsLayout() || !ok || info.ArtifactType != ArtifactTypeOpenTofu {
		return ""
	}
	return ref.OCIURL() + "?digest=" + info.Digest
}

// InstalledModule returns the directory into which `terraform init` (or `tofu init`) installed the
// module with the given key — `infra` for `module "infra"` in the root module, `infra.network` for a
// module inside it — and the source it was installed from, as recorded in modules/modules.json of
// the data directory: dataDir, else $TF_DATA_DIR, else .terraform, relative to the working
// directory Terraform runs in (and starts its providers in).
func InstalledModule(dataDir, key string) (dir, source string, err error) {
	if dataDir == "" {
		dataDir = os.Getenv("TF_DATA_DIR")
	}
	if dataDir == "" {
		dataDir = ".terraform"
	}
	manifest := filepath.Join(dataDir, "modules", "modules.json")
	b, err := os.ReadFile(manifest)
	if errors.Is(err, fs.ErrNotExist) {
		return "", "", fmt.Errorf("%w: %s does not exist; run terraform init (or tofu init) in the root module first", ErrModuleNotInstalled, manifest)
	}
	if err != nil {
		return "", "", err
	}
	var m struct {
		Modules []struct{ Key, Source, Dir string }
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return "", "", fmt.Errorf("read %s: %w", manifest, err)
	}
	var keys []string
	for _, mod := range m.Modules {
		if mod.Key == key && key != "" {
			if !filepath.IsLocal(mod.Dir) {
				return "", "", fmt.Errorf("%w: %s puts module %q at %q, outside the working directory; run terraform init (or tofu init) again", ErrModuleNotInstalled, manifest, key, mod.Dir)
			}
			return mod.Dir, mod.Source, nil
		}
		if mod.Key != "" {
			keys = append(keys, mod.Key)
		}
	}
	return "", "", fmt.Errorf("%w: no module %q in %s (installed: %s); name a module block by its key: \"infra\" for module \"infra\" of the root module, \"infra.network\" for module \"network\" inside it",
		ErrModuleNotInstalled, key, manifest, strings.Join(keys, ", "))
}

// Module is a bundle's Terraform layer, read once to verify installed copies against it.
type Module struct {
	// Bundle is the bundle's pinned reference; Layer the Terraform layer's digest.
	Bundle, Layer string
	files         map[string]string
}

// LoadModule downloads the bundle's Terraform layer through c (its digest verified) into a
// temporary directory, extracting it with the Terraform role's limits, so it refuses a hostile
// bundle as `ferry bundle pull` does, and keeps the hashes of its files.
func LoadModule(ctx context.Context, c *Client, ref Reference) (*Module, error) {
	tmp, err := os.MkdirTemp("", "ferry-module-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	res, err := Pull(ctx, c, ref, filepath.Join(tmp, "pull"), PullOptions{Only: []string{RoleTerraform}})
	if err != nil {
		return nil, err
	}
	l, _ := res.TerraformLayer()
	files, err := treeHashes(ctx, filepath.Join(res.Dir, RoleTerraform))
	if err != nil {
		return nil, err
	}
	return &Module{Bundle: res.PinnedReference, Layer: l.Digest, files: files}, nil
}

// Verify checks that dir (relative to the working directory, where Terraform installed a module)
// holds exactly the module's files: the same paths with the same bytes, and no other file. It
// reads dir through an [os.Root], with the Terraform role's limits on entries and bytes.
func (m *Module) Verify(ctx context.Context, dir string) error {
	got, err := treeHashes(ctx, dir)
	if err != nil {
		return fmt.Errorf("%w: read the installed module %s: %v", ErrModuleMismatch, dir, err)
	}
	want := m.files
	var diffs []string
	for _, p := range sortedKeys(want) {
		switch g, ok := got[p]; {
		case !ok:
			diffs = append(diffs, p+" is missing")
		case g != want[p]:
			diffs = append(diffs, p+" differs")
		}
	}
	for _, p := range sortedKeys(got) {
		if _, ok := want[p]; !ok {
			diffs = append(diffs, p+" is not in the bundle")
		}
	}
	if len(diffs) == 0 {
		return nil
	}
	more := ""
	if len(diffs) > 5 {
		more = fmt.Sprintf(" and %d more", len(diffs)-5)
		diffs = diffs[:5]
	}
	return fmt.Errorf("%w (layer %s of %s) in %s: %s%s", ErrModuleMismatch, m.Layer, m.Bundle, dir, strings.Join(diffs, ", "), more)
}

// treeHashes returns the regular files and symbolic links under dir by slash-separated relative
// path: a file's SHA-256, a link's target. Directories are left out (an archive need not list
// them). It reads through an [os.Root] at dir and stops past the Terraform role's limits.
func treeHashes(ctx context.Context, dir string) (map[string]string, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	lim := DefaultLimits(RoleTerraform)
	out := map[string]string{}
	var entries int
	var total int64
	err = fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if entries++; entries > lim.MaxEntries {
			return fmt.Errorf("%w: more than %d entries", ErrArchiveLimit, lim.MaxEntries)
		}
		switch {
		case d.IsDir():
			return nil
		case d.Type()&fs.ModeSymlink != 0:
			target, err := root.Readlink(p)
			if err != nil {
				return err
			}
			out[p] = "link:" + target
		case d.Type().IsRegular():
			f, err := root.Open(p)
			if err != nil {
				return err
			}
			h := sha256.New()
			n, err := io.Copy(h, io.LimitReader(f, lim.MaxTotalSize-total+1))
			f.Close()
			if err != nil {
				return err
			}
			if total += n; total > lim.MaxTotalSize {
				return fmt.Errorf("%w: more than %d bytes", ErrArchiveLimit, lim.MaxTotalSize)
			}
			out[p] = hex.EncodeToString(h.Sum(nil))
		default:
			out[p] = "special:" + d.Type().String()
		}
		return nil
	})
	return out, err
}

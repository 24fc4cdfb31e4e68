package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferry-dev/terraform-provider-ferry/bundle"
	"github.com/ferry-dev/terraform-provider-ferry/internal/bundletest"
	"github.com/ferry-dev/terraform-provider-ferry/internal/testenv"
)

// TestCLIHostileBundles pushes bundles a hostile or broken pipeline could make to the real registry and
// pulls each: every one ends in a short, clear error with exit 2, and nothing inside or outside the
// output directory is created, changed or removed.
func TestCLIHostileBundles(t *testing.T) {
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	rep := reg.Repository(t, "shop/hostile")
	long := strings.Repeat("n", 5000)
	zeros := strings.Repeat("\x00", 64<<20)
	role := func(i int, r string) func(*bundletest.Bundle) {
		return func(b *bundletest.Bundle) { b.Config.Layers[i].Role = r }
	}
	cases := []struct {
		name    string
		mutate  func(*bundletest.Bundle)
		want    string
		inspect bool // Inspect fails too (the config is wrong, not a layer's content)
	}{
		{"role traversal", role(0, "../escaped-role"), `config field layers[0].role "../escaped-role" is not a layer role`, true},
		{"absolute role", role(1, "/tmp/ferry-escaped-role"), `config field layers[1].role "/tmp/ferry-escaped-role" is not a layer role`, true},
		{"dot role", role(0, "."), `config field layers[0].role "." is not a layer role`, true},
		{"empty role", role(2, ""), `config field layers[2].role "" is not a layer role`, true},
		{"duplicate role", role(2, bundle.RoleTerraform), `config field layers[2].role "terraform" is also the role of layers[1]`, true},
		{"unknown role", role(1, "charts"), `"charts" is not a layer role; the roles are manifests, terraform, plugins`, true},
		{"role and media type disagree", func(b *bundletest.Bundle) {
			b.Config.Layers[1].Role, b.Config.Layers[2].Role = bundle.RolePlugins, bundle.RoleTerraform
		}, `config field layers[1].role "plugins" needs media type application/vnd.ferry.plugins.v1+zip, the layer is "archive/zip"`, true},
		{"long role", role(0, long), `… (4900 more bytes) is not a layer role`, true},
		{"config lists fewer layers", func(b *bundletest.Bundle) { b.Config.Layers = b.Config.Layers[:2] },
			"config field layers lists 2 layers, the manifest has 3", true},
		{"config layer digest differs", func(b *bundletest.Bundle) { b.Config.Layers[1].Digest = digest.FromString("other").String() },
			"config field layers[1].digest is", true},
		{"config layer size differs", func(b *bundletest.Bundle) { b.Config.Layers[2].Size++ }, "config field layers[2].size is", true},
		{"missing name", func(b *bundletest.Bundle) { b.Config.Name = "" }, "config field name is missing", true},
		{"missing version", func(b *bundletest.Bundle) { b.Config.Version = "" }, "config field version is missing", true},
		{"missing images lock", func(b *bundletest.Bundle) { b.Config.Images = nil }, "config field images is missing", true},
		{"image not pinned", func(b *bundletest.Bundle) { b.Config.Images[0].Digest = "latest" }, `config field images[0].digest "latest" is not a digest`, true},
		{"ratio bomb", func(b *bundletest.Bundle) {
			b.SetLayer(bundle.RoleTerraform, "terraform.zip", bundle.MediaTypeTerraform, bundletest.Zip(bundletest.Entry{Name: "main.tf", Body: zeros}))
		}, "more than the ratio limit of 100", false},
		{"long entry name", func(b *bundletest.Bundle) {
			b.SetLayer(bundle.RoleManifests, "manifests.tar.gz", bundle.MediaTypeManifests, bundletest.TarGz(bundletest.Entry{Name: long, Body: "x"}))
		}, "path component too long", false},
		{"tar traversal", func(b *bundletest.Bundle) {
			b.SetLayer(bundle.RoleManifests, "manifests.tar.gz", bundle.MediaTypeManifests, bundletest.TarGz(bundletest.Entry{Name: "../sibling/pwned", Body: "x"}))
		}, `"../sibling/pwned": path traversal`, false},
		{"truncated tar.gz", func(b *bundletest.Bundle) {
			full := bundletest.TarGz(bundletest.Entry{Name: "deploy.yaml", Body: strings.Repeat("kind: ConfigMap\n", 4096)})
			b.SetLayer(bundle.RoleManifests, "manifests.tar.gz", bundle.MediaTypeManifests, full[:len(full)/2])
		}, "invalid archive: unexpected EOF", false},
		{"truncated zip", func(b *bundletest.Bundle) {
			full := bundletest.Zip(bundletest.Entry{Name: "main.tf", Body: "# module\n"})
			b.SetLayer(bundle.RoleTerraform, "terraform.zip", bundle.MediaTypeTerraform, full[:len(full)-10])
		}, "invalid archive", false},
		{"long layer title", func(b *bundletest.Bundle) {
			b.Manifest.Layers[2].Annotations[ocispec.AnnotationTitle] = long
			b.Config.Layers[2].Title = long
		}, "must be at most 255 bytes of printable characters", true},
		{"control characters in a title", func(b *bundletest.Bundle) {
			b.Manifest.Layers[2].Annotations[ocispec.AnnotationTitle] = "\x1b[31mplugins.zip"
			b.Config.Layers[2].Title = "\x1b[31mplugins.zip"
		}, `title "\x1b[31mplugins.zip" must be at most 255 bytes of printable characters`, true},
		{"config title differs", func(b *bundletest.Bundle) { b.Config.Layers[0].Title = "other.tar.gz" },
			`config field layers[0].title is "other.tar.gz", the manifest's layer 0 is titled "manifests.tar.gz"`, true},
		{"config layers in another order", func(b *bundletest.Bundle) {
			b.Config.Layers[1], b.Config.Layers[2] = b.Config.Layers[2], b.Config.Layers[1]
		}, "config field layers[1].digest is", true},
		{"config media type differs", func(b *bundletest.Bundle) { b.Config.Layers[2].MediaType = "application/zip" },
			`config field layers[2].mediaType is "application/zip", the manifest's layer 2 is "application/vnd.ferry.plugins.v1+zip"`, true},
		{"manifests file over the default limit", func(b *bundletest.Bundle) {
			b.SetLayer(bundle.RoleManifests, "manifests.tar.gz", bundle.MediaTypeManifests, bundletest.TarGz(bundletest.Entry{Name: "big.yaml", Body: randomText(65 << 20)}))
		}, `"big.yaml": size 68157440 over the file size limit of 67108864 bytes`, false},
		{"zip symlink escape", func(b *bundletest.Bundle) {
			b.SetLayer(bundle.RolePlugins, "plugins.zip", bundle.MediaTypePlugins,
				bundletest.Zip(bundletest.Entry{Name: "l", Link: "../../sibling"}, bundletest.Entry{Name: "l/pwned", Body: "x"}))
		}, `symlink target "../../sibling" leaves the root`, false},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := bundletest.Valid()
			tc.mutate(b)
			tag := "case" + strconv.Itoa(i)
			if _, err := b.Store(context.Background(), rep, tag); err != nil {
				t.Fatal(err)
			}
			ref := reg.Addr + "/shop/hostile:" + tag
			base, out := bundletest.Sandbox(t)
			before := bundletest.Snapshot(t, base)
			r := ferry(t, nil, "", "bundle", "pull", ref, "-o", out, "--plain-http", "--no-tty")
			if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("pull: exit %d, stderr %q; want exit 2 and %q", r.code, r.stderr, tc.want)
			}
			if len(r.stderr) > 1000 {
				t.Errorf("pull: error is %d bytes long", len(r.stderr))
			}
			bundletest.SameTree(t, "after the pull", before, bundletest.Snapshot(t, base))
			if _, err := os.Lstat(filepath.Join(filepath.Dir(base), "escaped-role")); err == nil {
				t.Errorf("escaped-role was created beside the sandbox")
			}
			if tc.inspect {
				if r := ferry(t, nil, "", "bundle", "inspect", ref, "--plain-http"); r.code != 2 || !strings.Contains(r.stderr, tc.want) {
					t.Errorf("inspect: exit %d, stderr %q; want exit 2 and %q", r.code, r.stderr, tc.want)
				}
			}
		})
	}
}

// randomText returns n bytes of text that compresses about as well as real YAML.
func randomText(n int) string {
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "  key-%d: %x\n", i, uint64(i)*0x9e3779b97f4a7c15)
	}
	return b.String()[:n]
}

// TestCLIPullLimitFlags: the flags raise the per-role limits the hostile suite hits.
func TestCLIPullLimitFlags(t *testing.T) {
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	b := bundletest.Valid()
	b.SetLayer(bundle.RoleTerraform, "terraform.zip", bundle.MediaTypeTerraform, bundletest.Zip(bundletest.Entry{Name: "zeros.bin", Body: strings.Repeat("\x00", 64<<20)}))
	if _, err := b.Store(context.Background(), reg.Repository(t, "shop/bundle"), "zeros"); err != nil {
		t.Fatal(err)
	}
	ref := reg.Addr + "/shop/bundle:zeros"
	if r := ferry(t, nil, "", "bundle", "pull", ref, "-o", t.TempDir(), "--plain-http", "--no-tty"); r.code != 2 || !strings.Contains(r.stderr, "--max-ratio") {
		t.Errorf("pull with the default ratio: exit %d, stderr %q; want exit 2 and a hint naming --max-ratio", r.code, r.stderr)
	}
	if r := ferry(t, nil, "", "bundle", "pull", ref, "-o", t.TempDir(), "--plain-http", "--no-tty", "--max-ratio", "2000"); r.code != 0 {
		t.Errorf("pull --max-ratio 2000: exit %d, stderr %q; want success", r.code, r.stderr)
	}
	if r := ferry(t, nil, "", "bundle", "pull", ref, "-o", t.TempDir(), "--plain-http", "--no-tty", "--max-ratio", "2000", "--max-file-size", "1048576"); r.code != 2 || !strings.Contains(r.stderr, "file size limit of 1048576 bytes") {
		t.Errorf("pull --max-file-size 1048576: exit %d, stderr %q; want exit 2 and the file size limit", r.code, r.stderr)
	}
	if r := ferry(t, nil, "", "bundle", "pull", ref, "-o", t.TempDir(), "--max-ratio", "-1"); r.code != 2 || !strings.Contains(r.stderr, "--max-ratio -1: must be positive") {
		t.Errorf("pull --max-ratio -1: exit %d, stderr %q; want exit 2", r.code, r.stderr)
	}
}

// TestCLIPullKeepsWhatItDidNotCreate: what is already at a path pull writes is never replaced, and a
// failed pull into a new directory leaves no directory behind.
func TestCLIPullKeepsWhatItDidNotCreate(t *testing.T) {
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	rep := reg.Repository(t, "shop/bundle")
	if _, err := bundletest.Valid().Store(context.Background(), rep, "good"); err != nil {
		t.Fatal(err)
	}
	bomb := bundletest.Valid()
	bomb.SetLayer(bundle.RolePlugins, "plugins.zip", bundle.MediaTypePlugins,
		bundletest.Zip(bundletest.Entry{Name: "ok", Body: "x"}, bundletest.Entry{Name: "../evil", Body: "x"}))
	if _, err := bomb.Store(context.Background(), rep, "bad"); err != nil {
		t.Fatal(err)
	}
	good, bad := reg.Addr+"/shop/bundle:good", reg.Addr+"/shop/bundle:bad"
	for _, tc := range []struct {
		name  string
		setup func(out string)
		want  string
	}{
		{"regular file at a role", func(out string) { os.WriteFile(filepath.Join(out, "manifests"), []byte("mine"), 0o644) },
			"manifests: output path exists: it is a file"},
		{"dangling symlink at a role", func(out string) { os.Symlink("nowhere", filepath.Join(out, "terraform")) },
			"terraform: output path exists: it is a symlink"},
		{"symlink to a directory at a role", func(out string) {
			os.Mkdir(filepath.Join(out, "elsewhere"), 0o755)
			os.Symlink("elsewhere", filepath.Join(out, "plugins"))
		}, "plugins: output path exists: it is a symlink"},
		{"non-empty role directory", func(out string) {
			os.MkdirAll(filepath.Join(out, "plugins"), 0o755)
			os.WriteFile(filepath.Join(out, "plugins", "mine.sh"), []byte("mine"), 0o644)
		}, "plugins: output path exists and is not empty"},
		{"earlier lock file", func(out string) { os.WriteFile(filepath.Join(out, "ferry.lock.json"), []byte("{}"), 0o644) },
			"ferry.lock.json: output path exists (from an earlier pull?)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base, out := bundletest.Sandbox(t)
			tc.setup(out)
			before := bundletest.Snapshot(t, base)
			r := ferry(t, nil, "", "bundle", "pull", good, "-o", out, "--plain-http", "--no-tty")
			if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("pull: exit %d, stderr %q; want exit 2 and %q", r.code, r.stderr, tc.want)
			}
			bundletest.SameTree(t, "after the pull", before, bundletest.Snapshot(t, base))
		})
	}
	t.Run("empty role directory is replaced", func(t *testing.T) {
		_, out := bundletest.Sandbox(t)
		os.Mkdir(filepath.Join(out, "manifests"), 0o755)
		if r := ferry(t, nil, "", "bundle", "pull", good, "-o", out, "--plain-http", "--no-tty"); r.code != 0 {
			t.Fatalf("pull: exit %d, stderr %s", r.code, r.stderr)
		}
		if _, err := os.Stat(filepath.Join(out, "manifests", "deploy.yaml")); err != nil {
			t.Error(err)
		}
	})
	t.Run("output is a file", func(t *testing.T) {
		base, _ := bundletest.Sandbox(t)
		before := bundletest.Snapshot(t, base)
		r := ferry(t, nil, "", "bundle", "pull", good, "-o", filepath.Join(base, "sibling", "secret"), "--plain-http", "--no-tty")
		if r.code != 2 || !strings.Contains(r.stderr, "it is a file, not a directory") {
			t.Errorf("pull: exit %d, stderr %q; want exit 2 and 'it is a file, not a directory'", r.code, r.stderr)
		}
		bundletest.SameTree(t, "after the pull", before, bundletest.Snapshot(t, base))
	})
	t.Run("failed pull into a new directory", func(t *testing.T) {
		base, _ := bundletest.Sandbox(t)
		before := bundletest.Snapshot(t, base)
		r := ferry(t, nil, "", "bundle", "pull", bad, "-o", filepath.Join(base, "new", "deep", "out"), "--plain-http", "--no-tty")
		if r.code != 2 || !strings.Contains(r.stderr, "path traversal") {
			t.Errorf("pull: exit %d, stderr %q; want exit 2 and path traversal", r.code, r.stderr)
		}
		bundletest.SameTree(t, "after the pull", before, bundletest.Snapshot(t, base))
	})
}

// TestCLIPullStalledRegistry: a registry that stops sending in the middle of a blob fails the pull
// within the idle timeout as transient (exit 3), with the attempts named, and changes nothing.
func TestCLIPullStalledRegistry(t *testing.T) {
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	b := bundletest.Valid()
	big := bundletest.Zip(bundletest.Entry{Name: "main.tf", Body: randomText(1 << 20)})
	b.SetLayer(bundle.RoleTerraform, "terraform.zip", bundle.MediaTypeTerraform, big)
	if _, err := b.Store(context.Background(), reg.Repository(t, "shop/bundle"), "1"); err != nil {
		t.Fatal(err)
	}
	blob := "/blobs/" + digest.FromBytes(big).String()
	target, _ := url.Parse("http://" + reg.RawAddr)
	rp := httputil.NewSingleHostReverseProxy(target)
	var gets atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, blob) {
			rp.ServeHTTP(w, r)
			return
		}
		gets.Add(1)
		w.Header().Set("Content-Length", strconv.Itoa(len(big)))
		w.WriteHeader(http.StatusOK)
		w.Write(big[:len(big)/2])
		w.(http.Flusher).Flush()
		<-r.Context().Done() // half the blob, then nothing
	}))
	t.Cleanup(srv.Close)
	base, out := bundletest.Sandbox(t)
	before := bundletest.Snapshot(t, base)
	r := ferry(t, nil, "", "bundle", "pull", strings.TrimPrefix(srv.URL, "http://")+"/shop/bundle:1", "-o", out,
		"--plain-http", "--no-tty", "--idle-timeout", "300ms", "--retries", "2")
	if r.code != 3 || !strings.Contains(r.stderr, "idle timeout") || !strings.Contains(r.stderr, "after 2 attempts") {
		t.Errorf("pull from a stalling registry: exit %d, stderr %q; want exit 3, the idle timeout and 2 attempts", r.code, r.stderr)
	}
	if n := gets.Load(); n != 2 {
		t.Errorf("the registry saw %d GETs of the blob, want 2", n)
	}
	bundletest.SameTree(t, "after the pull", before, bundletest.Snapshot(t, base))
}

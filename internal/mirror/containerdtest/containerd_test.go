// Package containerdtest proves the registry mirror files ferry writes with containerd's own
// host configuration loader and resolver. It is its own module so that containerd's dependencies
// stay out of ferry's; `make mirror-check` runs it.
package containerdtest

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/remotes"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/containerd/v2/core/remotes/docker/config"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferry-dev/terraform-provider-ferry/bundle"
	"github.com/ferry-dev/terraform-provider-ferry/internal/mirror"
	"github.com/ferry-dev/terraform-provider-ferry/internal/testenv"
)

// TestContainerdPullsRelocatedImages copies a bundle that pins a multi-platform index and a
// single image from one real registry to another, writes the mirror configuration, stops the
// source registry, and resolves and fetches every original image reference — the index, one of
// its platform manifests, the image — through containerd's resolver configured from the written
// hosts.toml: each comes from the relocated repository, digest-verified.
func TestContainerdPullsRelocatedImages(t *testing.T) {
	ctx := context.Background()
	src := testenv.StartRegistry(t, testenv.RegistryOptions{})
	dst := testenv.StartRegistry(t, testenv.RegistryOptions{})
	index := src.PushIndex(t, "shop/api", "1.4.0", "api")
	image := src.PushImage(t, "tools/worker", "2.0.0", "worker")
	c, err := bundle.NewClient(bundle.ClientOptions{PlainHTTP: true, Credentials: bundle.StaticCredentials(nil, nil)})
	if err != nil {
		t.Fatal(err)
	}
	rel := t.TempDir()
	writeFile(t, filepath.Join(rel, "ferry.yaml"), "apiVersion: ferry.dev/v1\nkind: Bundle\nname: shop\nversion: 1.4.0\nimages:\n  api: "+
		src.Addr+"/shop/api:1.4.0\n  worker: "+src.Addr+"/tools/worker:2.0.0\nmanifests: m\n")
	writeFile(t, filepath.Join(rel, "m", "cm.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n")
	ref := func(s string) bundle.Reference {
		r, err := bundle.ParseReference(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if _, err := bundle.Push(ctx, c, rel, ref(src.Addr+"/shop/bundle:1.4.0"), bundle.PushOptions{PackOptions: bundle.PackOptions{Created: time.Unix(1764115200, 0)}}); err != nil {
		t.Fatal(err)
	}
	res, err := bundle.Copy(ctx, c, ref(src.Addr+"/shop/bundle:1.4.0"), ref(dst.Addr+"/acme/bundle"), bundle.CopyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	host, _, _ := strings.Cut(src.Addr, "/")
	if _, err := (mirror.Relocation{Registry: dst.Addr, Repository: "acme/bundle", PlainHTTP: true, Hosts: []string{host}}).Write(dir); err != nil {
		t.Fatal(err)
	}
	if err := src.Stop(); err != nil { // from here on, only the mirror can serve
		t.Fatal(err)
	}

	hosts := config.ConfigureHosts(ctx, config.HostOptions{HostDir: config.HostDirFromRoot(filepath.Join(dir, "containerd", "certs.d"))})
	configured, err := hosts(host)
	if err != nil || len(configured) < 1 || configured[0].Host != dst.Addr || configured[0].Path != "/v2/"+bundle.RelocatedPrefix("acme/bundle", host) {
		t.Fatalf("containerd's hosts for %s = %+v, %v; want the relocated prefix on %s first", host, configured, err, dst.Addr)
	}
	resolver := docker.NewResolver(docker.ResolverOptions{Hosts: hosts})
	before := len(dst.RequestLog())
	for _, img := range res.Images {
		name, desc, err := resolver.Resolve(ctx, img.From)
		if err != nil {
			t.Fatalf("containerd resolves %s: %v", img.From, err)
		}
		if want := img.From[strings.Index(img.From, "@")+1:]; desc.Digest.String() != want {
			t.Errorf("%s resolved to %s, want %s", img.From, desc.Digest, want)
		}
		raw := fetch(t, ctx, resolver, name, desc)
		if desc.Digest == index.Digest {
			var idx ocispec.Index
			if err := json.Unmarshal(raw, &idx); err != nil || len(idx.Manifests) != 2 {
				t.Fatalf("index %s: %v", desc.Digest, err)
			}
			fetch(t, ctx, resolver, name, idx.Manifests[1])
		} else if desc.Digest != image.Digest {
			t.Errorf("unexpected image %s", desc.Digest)
		}
	}
	var relocated int
	for _, line := range dst.RequestLog()[before:] {
		if strings.Contains(line, "/v2/"+bundle.RelocatedPrefix("acme/bundle", host)+"/") {
			relocated++
		}
	}
	if relocated == 0 {
		t.Errorf("no request reached the relocated repositories:\n%s", strings.Join(dst.RequestLog()[before:], "\n"))
	}
}

// fetch fetches desc of the image name through resolver and checks its digest.
func fetch(t *testing.T, ctx context.Context, resolver remotes.Resolver, name string, desc ocispec.Descriptor) []byte {
	t.Helper()
	f, err := resolver.Fetcher(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := f.Fetch(ctx, desc)
	if err != nil {
		t.Fatalf("containerd fetches %s of %s: %v", desc.Digest, name, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	if digest.FromBytes(b) != desc.Digest {
		t.Errorf("%s of %s: content does not match its digest", desc.Digest, name)
	}
	return b
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

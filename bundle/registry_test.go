package bundle

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry/remote/auth"

	"github.com/ferry-dev/terraform-provider-ferry/internal/testenv"
)

// registryRelease writes a release whose images live in the test registry at addr.
func registryRelease(t testing.TB, addr, apiDigest string) string {
	t.Helper()
	dir := t.TempDir()
	files := releaseFiles()
	files["ferry.yaml"] = strings.Replace(files["ferry.yaml"], "images:\n  api: registry.example.com/shop/api:1.4.0@"+dAPI+"\n",
		"images:\n  api: "+addr+"/shop/api:1.4.0\n  web: "+addr+"/shop/web:1.4.0\n  pinned: "+addr+"/shop/api@"+apiDigest+"\n", 1)
	files["manifests/api.yaml"] = strings.ReplaceAll(files["manifests/api.yaml"], "registry.example.com", addr)
	files["manifests/web.yaml"] = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n  - name: web\n    image: " + addr + "/shop/web:1.4.0\n"
	writeTree(t, dir, files)
	return dir
}

func clientFor(t testing.TB, creds map[string]auth.Credential, opts ClientOptions) *Client {
	t.Helper()
	opts.PlainHTTP = true
	if opts.Credentials == nil {
		opts.Credentials = StaticCredentials(creds, nil)
	}
	if opts.RetryBackoff == 0 {
		opts.RetryBackoff = 10 * time.Millisecond
	}
	c, err := NewClient(opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustRef(t testing.TB, s string) Reference {
	t.Helper()
	r, err := ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func fetchManifest(t testing.TB, reg *testenv.Registry, repo, ref string) ocispec.Manifest {
	t.Helper()
	ctx := context.Background()
	rep := reg.Repository(t, repo)
	desc, err := rep.Resolve(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := content.FetchAll(ctx, rep, desc)
	if err != nil {
		t.Fatal(err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestRegistryPushInspectPull(t *testing.T) {
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	api := reg.PushImage(t, "shop/api", "1.4.0", "api")
	web := reg.PushIndex(t, "shop/web", "1.4.0", "web")
	dir := registryRelease(t, reg.Addr, api.Digest.String())
	c := clientFor(t, nil, ClientOptions{})
	ctx := context.Background()

	res, err := Push(ctx, c, dir, mustRef(t, reg.Addr+"/shop/bundle"), PushOptions{PackOptions: PackOptions{Created: testCreated}, Tags: []string{"latest"}})
	if err != nil {
		t.Fatalf("Push() error = %v", err)
	}
	if got, want := strings.Join(res.Tags, ","), "1.4.0_build.7,latest"; got != want {
		t.Errorf("Push() tags = %s, want %s (the version with + as _, then --tag)", got, want)
	}
	if res.Uploaded != 4 || res.Skipped != 0 {
		t.Errorf("Push() uploaded/skipped = %d/%d, want 4/0", res.Uploaded, res.Skipped)
	}
	locks := map[string]ImageLock{}
	for _, l := range res.Images {
		locks[l.Name] = l
	}
	if l := locks["api"]; l.Digest != api.Digest.String() || l.MediaType != ocispec.MediaTypeImageManifest || l.Tag != "1.4.0" || l.Repository != reg.Addr+"/shop/api" {
		t.Errorf("lock api = %+v, want digest %s of an image manifest", l, api.Digest)
	}
	if l := locks["web"]; l.Digest != web.Digest.String() || l.MediaType != ocispec.MediaTypeImageIndex {
		t.Errorf("lock web = %+v, want the index digest %s with the index media type", l, web.Digest)
	}
	if l := locks["pinned"]; l.Digest != api.Digest.String() || l.MediaType != ocispec.MediaTypeImageManifest || l.Tag != "" {
		t.Errorf("lock pinned = %+v, want the digest verified with its media type", l)
	}
	if len(res.Rewrites) != 2 {
		t.Errorf("Push() rewrites = %+v, want api.yaml and web.yaml", res.Rewrites)
	}
	for _, tag := range []string{"1.4.0_build.7", "latest"} {
		desc, err := reg.Resolve(t, "shop/bundle", tag)
		if err != nil || desc.Digest.String() != res.Digest {
			t.Errorf("tag %s = %v, %v, want %s", tag, desc.Digest, err, res.Digest)
		}
	}
	if err := checkConsumers(fetchManifest(t, reg, "shop/bundle", res.Digest)); err != nil {
		t.Errorf("pushed manifest breaks a consumer: %v", err)
	}

	info, err := Inspect(ctx, c, mustRef(t, reg.Addr+"/shop/bundle:latest"))
	if err != nil {
		t.Fatalf("Inspect() error = %v", err)
	}
	if info.Digest != res.Digest || info.Name != "shop" || info.Version != "1.4.0+build.7" || info.Revision != "abc123" ||
		info.PinnedReference != reg.Addr+"/shop/bundle@"+res.Digest || len(info.Layers) != 3 || len(info.Images) != 3 {
		t.Errorf("Inspect() = %+v, want the pushed bundle", info)
	}

	out := t.TempDir()
	pulled, err := Pull(ctx, c, mustRef(t, reg.Addr+"/shop/bundle@"+res.Digest), out, PullOptions{})
	if err != nil {
		t.Fatalf("Pull() error = %v", err)
	}
	if strings.Join(pulled.Roles, ",") != "manifests,terraform,plugins" {
		t.Errorf("Pull() roles = %v", pulled.Roles)
	}
	apiYAML, _ := os.ReadFile(filepath.Join(out, "manifests", "api.yaml"))
	if !strings.Contains(string(apiYAML), reg.Addr+"/shop/api@"+api.Digest.String()) {
		t.Errorf("pulled api.yaml = %s, want the pinned image", apiYAML)
	}
	if fi, err := os.Stat(filepath.Join(out, "plugins", "migrate.sh")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("pulled plugin = %v, %v, want mode 0755", fi, err)
	}
	if _, err := os.Stat(filepath.Join(out, "terraform", "main.tf")); err != nil {
		t.Errorf("pulled terraform/main.tf: %v", err)
	}
	var lock Lock
	raw, err := os.ReadFile(filepath.Join(out, LockFileName))
	if err != nil || json.Unmarshal(raw, &lock) != nil {
		t.Fatalf("read lock file: %v", err)
	}
	if lock.Bundle.Digest != res.Digest || len(lock.Images) != 3 || lock.Bundle.Name != "shop" {
		t.Errorf("lock file = %+v, want the bundle digest and 3 images", lock)
	}
	// Pulling again into the same directory refuses to overwrite.
	if _, err := Pull(ctx, c, mustRef(t, reg.Addr+"/shop/bundle:latest"), out, PullOptions{}); err == nil {
		t.Errorf("Pull() into a filled directory succeeded, want an error")
	}
	// --only.
	only := t.TempDir()
	if _, err := Pull(ctx, c, mustRef(t, reg.Addr+"/shop/bundle:latest"), only, PullOptions{Only: []string{RoleTerraform}}); err != nil {
		t.Fatalf("Pull(only terraform) error = %v", err)
	}
	if entries, _ := os.ReadDir(only); len(entries) != 2 {
		t.Errorf("Pull(only terraform) wrote %v, want terraform and the lock file", entries)
	}

	// Re-push of the unchanged bundle uploads nothing and keeps the digest.
	before := reg.Requests()
	again, err := Push(ctx, c, dir, mustRef(t, reg.Addr+"/shop/bundle:latest"), PushOptions{PackOptions: PackOptions{Created: testCreated}})
	if err != nil {
		t.Fatalf("re-Push() error = %v", err)
	}
	if again.Digest != res.Digest || again.Uploaded != 0 || again.Skipped != 4 {
		t.Errorf("re-Push() = %s uploaded %d skipped %d, want %s 0 4", again.Digest, again.Uploaded, again.Skipped, res.Digest)
	}
	for _, line := range reg.RequestLog()[before:] {
		if strings.HasPrefix(line, "POST ") || (strings.HasPrefix(line, "PUT ") && strings.Contains(line, "/blobs/")) {
			t.Errorf("re-Push() sent %s, want no blob upload", line)
		}
	}
}

func TestRegistryAuth(t *testing.T) {
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{Auth: true})
	api := reg.PushImage(t, "shop/api", "1.4.0", "api")
	reg.PushIndex(t, "shop/web", "1.4.0", "web")
	dir := registryRelease(t, reg.Addr, api.Digest.String())
	ctx := context.Background()
	opts := PushOptions{PackOptions: PackOptions{Created: testCreated}}
	good := map[string]auth.Credential{reg.Addr: {Username: reg.Username, Password: reg.Password}}

	t.Run("no credentials", func(t *testing.T) {
		_, err := Push(ctx, clientFor(t, nil, ClientOptions{}), dir, mustRef(t, reg.Addr+"/shop/bundle:1"), opts)
		if !errors.Is(err, ErrImageUnauthorized) || !strings.Contains(err.Error(), "image api (") || !strings.Contains(err.Error(), "unauthorized") {
			t.Errorf("Push() error = %v, want image api unauthorized", err)
		}
		if tags := reg.ListTags(t, "shop/bundle"); len(tags) != 0 {
			t.Errorf("tags after a failed push = %v, want none", tags)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		bad := map[string]auth.Credential{reg.Addr: {Username: reg.Username, Password: "wrong"}}
		_, err := Push(ctx, clientFor(t, bad, ClientOptions{}), dir, mustRef(t, reg.Addr+"/shop/bundle:1"), opts)
		if !errors.Is(err, ErrImageUnauthorized) {
			t.Errorf("Push() error = %v, want ErrImageUnauthorized", err)
		}
		// The bundle registry itself refuses too: a release without images.
		plain := t.TempDir()
		writeTree(t, plain, map[string]string{"ferry.yaml": "apiVersion: ferry.dev/v1\nkind: Bundle\nname: a\nversion: 1\nplugins: p\n", "p/x": "x"})
		_, err = Push(ctx, clientFor(t, bad, ClientOptions{}), plain, mustRef(t, reg.Addr+"/shop/plain:1"), opts)
		if !errors.Is(err, ErrUnauthorized) {
			t.Errorf("Push() error = %v, want ErrUnauthorized", err)
		}
		_, err = Inspect(ctx, clientFor(t, bad, ClientOptions{}), mustRef(t, reg.Addr+"/shop/api:1.4.0"))
		if !errors.Is(err, ErrUnauthorized) {
			t.Errorf("Inspect() error = %v, want ErrUnauthorized", err)
		}
	})
	t.Run("static credentials", func(t *testing.T) {
		res, err := Push(ctx, clientFor(t, good, ClientOptions{}), dir, mustRef(t, reg.Addr+"/shop/bundle:static"), opts)
		if err != nil {
			t.Fatalf("Push() error = %v", err)
		}
		if _, err := Pull(ctx, clientFor(t, good, ClientOptions{}), mustRef(t, reg.Addr+"/shop/bundle:static"), t.TempDir(), PullOptions{}); err != nil {
			t.Errorf("Pull() error = %v", err)
		}
		if desc, err := reg.Resolve(t, "shop/bundle", "static"); err != nil || desc.Digest.String() != res.Digest {
			t.Errorf("tag static = %v, %v, want %s", desc.Digest, err, res.Digest)
		}
	})
	t.Run("docker config", func(t *testing.T) {
		cfgDir := t.TempDir()
		authStr := base64.StdEncoding.EncodeToString([]byte(reg.Username + ":" + reg.Password))
		cfg := fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, reg.Addr, authStr)
		if err := os.WriteFile(filepath.Join(cfgDir, "config.json"), []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Setenv("DOCKER_CONFIG", cfgDir)
		c, err := NewClient(ClientOptions{PlainHTTP: true})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Push(ctx, c, dir, mustRef(t, reg.Addr+"/shop/bundle:docker"), opts); err != nil {
			t.Errorf("Push() with docker config error = %v", err)
		}
	})
}

func TestRegistryImageErrors(t *testing.T) {
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	reg.PushImage(t, "shop/api", "1.4.0", "api")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	ctx := context.Background()
	tests := []struct {
		name, image string
		want        error
		reason      string
	}{
		{"missing tag", reg.Addr + "/shop/api:9.9.9", ErrImageNotFound, "not found"},
		{"missing repository", reg.Addr + "/shop/nope:1", ErrImageNotFound, "not found"},
		{"missing digest", reg.Addr + "/shop/api@" + dAPI, ErrImageNotFound, "not found"},
		{"closed port", closed + "/shop/api:1", ErrImageUnreachable, "unreachable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeTree(t, dir, map[string]string{
				"ferry.yaml": "apiVersion: ferry.dev/v1\nkind: Bundle\nname: a\nversion: 1\nplugins: p\nimages:\n  good: " + reg.Addr + "/shop/api:1.4.0\n  broken: " + tt.image + "\n",
				"p/x":        "x",
			})
			c := clientFor(t, nil, ClientOptions{MaxAttempts: 2})
			_, err := Push(ctx, c, dir, mustRef(t, reg.Addr+"/shop/bundle:1"), PushOptions{})
			if !errors.Is(err, tt.want) {
				t.Fatalf("Push() error = %v, want %v", err, tt.want)
			}
			if want := "image broken (" + tt.image + "): " + tt.reason; !strings.Contains(err.Error(), want) {
				t.Errorf("Push() error = %v, want it to contain %q", err, want)
			}
			if tags := reg.ListTags(t, "shop/bundle"); len(tags) != 0 {
				t.Errorf("tags after a failed push = %v, want none", tags)
			}
		})
	}
}

func TestRegistryInspectErrors(t *testing.T) {
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	reg.PushImage(t, "shop/api", "1.4.0", "api")
	reg.PushIndex(t, "shop/web", "1.4.0", "web")
	c := clientFor(t, nil, ClientOptions{})
	tests := []struct {
		ref  string
		want error
	}{
		{reg.Addr + "/shop/bundle:missing", ErrNotFound},
		{reg.Addr + "/shop/api:nope", ErrNotFound},
		{reg.Addr + "/shop/api:1.4.0", ErrNotBundle},
		{reg.Addr + "/shop/web:1.4.0", ErrNotBundle},
		{"oci-layout:" + filepath.Join(t.TempDir(), "none") + ":1", ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			if _, err := Inspect(context.Background(), c, mustRef(t, tt.ref)); !errors.Is(err, tt.want) {
				t.Errorf("Inspect() error = %v, want %v", err, tt.want)
			}
			if _, err := Pull(context.Background(), c, mustRef(t, tt.ref), t.TempDir(), PullOptions{}); !errors.Is(err, tt.want) {
				t.Errorf("Pull() error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestLayoutPushPull(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, releaseFiles())
	layout := filepath.Join(t.TempDir(), "layout")
	c := newTestClient(t)
	ctx := context.Background()
	res, err := Push(ctx, c, dir, mustRef(t, "oci-layout:"+layout+":v1"), PushOptions{PackOptions: PackOptions{Created: testCreated, Offline: true}})
	if err != nil {
		t.Fatalf("Push(layout) error = %v", err)
	}
	if _, err := os.Stat(filepath.Join(layout, "index.json")); err != nil {
		t.Errorf("layout index.json: %v", err)
	}
	info, err := Inspect(ctx, c, mustRef(t, "oci-layout:"+layout+":v1"))
	if err != nil || info.Digest != res.Digest {
		t.Fatalf("Inspect(layout) = %v, %v, want %s", info, err, res.Digest)
	}
	if _, err := Pull(ctx, c, mustRef(t, "oci-layout:"+layout+"@"+res.Digest), t.TempDir(), PullOptions{}); err != nil {
		t.Errorf("Pull(layout) error = %v", err)
	}
	again, err := Push(ctx, c, dir, mustRef(t, "oci-layout:"+layout+":v1"), PushOptions{PackOptions: PackOptions{Created: testCreated, Offline: true}})
	if err != nil || again.Uploaded != 0 || again.Digest != res.Digest {
		t.Errorf("re-Push(layout) = %+v, %v, want 0 uploads and the same digest", again, err)
	}
}

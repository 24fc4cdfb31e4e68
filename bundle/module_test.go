package bundle

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-dev/terraform-provider-ferry/internal/testenv"
)

func TestInstalledModule(t *testing.T) {
	data := t.TempDir()
	if _, _, err := InstalledModule(data, "infra"); !errors.Is(err, ErrModuleNotInstalled) || !strings.Contains(err.Error(), "run terraform init") {
		t.Errorf("InstalledModule() without modules.json = %v, want %v telling to run terraform init", err, ErrModuleNotInstalled)
	}
	os.MkdirAll(filepath.Join(data, "modules"), 0o755)
	manifest := `{"Modules":[{"Key":"","Source":"","Dir":"."},{"Key":"infra","Source":"http://r/v2/x/blobs/sha256:a?archive=zip","Dir":".terraform/modules/infra"},` +
		`{"Key":"infra.net","Source":"./net","Dir":".terraform/modules/infra/net"}]}`
	if err := os.WriteFile(filepath.Join(data, "modules", "modules.json"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	dir, src, err := InstalledModule(data, "infra")
	if err != nil || dir != ".terraform/modules/infra" || src != "http://r/v2/x/blobs/sha256:a?archive=zip" {
		t.Errorf("InstalledModule(infra) = %q, %q, %v", dir, src, err)
	}
	if dir, _, err := InstalledModule(data, "infra.net"); err != nil || dir != ".terraform/modules/infra/net" {
		t.Errorf("InstalledModule(infra.net) = %q, %v", dir, err)
	}
	outside := `{"Modules":[{"Key":"up","Source":"x","Dir":"../elsewhere"},{"Key":"abs","Source":"x","Dir":"/etc"}]}`
	outsideData := t.TempDir()
	os.MkdirAll(filepath.Join(outsideData, "modules"), 0o755)
	os.WriteFile(filepath.Join(outsideData, "modules", "modules.json"), []byte(outside), 0o644)
	for _, key := range []string{"up", "abs"} {
		if _, _, err := InstalledModule(outsideData, key); !errors.Is(err, ErrModuleNotInstalled) || !strings.Contains(err.Error(), "outside the working directory") {
			t.Errorf("InstalledModule(%q) at a directory outside = %v, want %v", key, err, ErrModuleNotInstalled)
		}
	}
	for _, key := range []string{"nope", ""} {
		if _, _, err := InstalledModule(data, key); !errors.Is(err, ErrModuleNotInstalled) || !strings.Contains(err.Error(), "installed: infra, infra.net") {
			t.Errorf("InstalledModule(%q) = %v, want %v naming the installed modules", key, err, ErrModuleNotInstalled)
		}
	}
	t.Setenv("TF_DATA_DIR", data)
	if dir, _, err := InstalledModule("", "infra"); err != nil || dir != ".terraform/modules/infra" {
		t.Errorf("InstalledModule() with TF_DATA_DIR = %q, %v", dir, err)
	}
}

// TestVerifyModule: the module pulled from a bundle verifies against it; a changed, an added and a
// removed file are each named; a bundle without a Terraform layer is not found.
func TestVerifyModule(t *testing.T) {
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	c := clientFor(t, nil, ClientOptions{})
	ctx := context.Background()
	res, err := Push(ctx, c, "../examples/release", mustRef(t, reg.Addr+"/shop/bundle:1.4.0"), PushOptions{PackOptions: PackOptions{Created: testCreated, Offline: true}})
	if err != nil {
		t.Fatal(err)
	}
	pinned := mustRef(t, res.PinnedReference)
	info, err := Inspect(ctx, c, pinned)
	if err != nil {
		t.Fatal(err)
	}
	if l, _ := info.TerraformLayer(); info.TerraformModuleSource != "http://"+reg.Addr+"/v2/shop/bundle/blobs/"+l.Digest+"?archive=zip" {
		t.Errorf("TerraformModuleSource = %q", info.TerraformModuleSource)
	}
	if info.OpenTofuModuleSource != "oci://"+reg.Addr+"/shop/bundle?digest="+res.Digest {
		t.Errorf("OpenTofuModuleSource = %q", info.OpenTofuModuleSource)
	}
	hub := mustRef(t, "docker.io/shop/bundle@"+res.Digest)
	if src := c.TerraformModuleSource(hub, info); src != "" {
		t.Errorf("TerraformModuleSource() on Docker Hub = %q, want none (its blobs need a token exchange)", src)
	}
	out := filepath.Join(t.TempDir(), "b")
	if _, err := Pull(ctx, c, pinned, out, PullOptions{Only: []string{RoleTerraform}}); err != nil {
		t.Fatal(err)
	}
	module := filepath.Join(out, RoleTerraform)
	m, err := LoadModule(ctx, c, pinned)
	if err != nil {
		t.Fatal(err)
	}
	if l, _ := info.TerraformLayer(); m.Layer != l.Digest || m.Bundle != res.PinnedReference {
		t.Errorf("LoadModule() = layer %s of %s, want %s of %s", m.Layer, m.Bundle, l.Digest, res.PinnedReference)
	}
	if err := m.Verify(ctx, module); err != nil {
		t.Fatalf("Verify() of the pulled module = %v", err)
	}
	for _, tt := range []struct {
		name   string
		change func() error
		want   string
	}{
		{"changed", func() error { return os.WriteFile(filepath.Join(module, "main.tf"), []byte("# changed\n"), 0o644) }, "main.tf differs"},
		{"added", func() error { return os.WriteFile(filepath.Join(module, "extra.tf"), nil, 0o644) }, "extra.tf is not in the bundle"},
		{"removed", func() error { return os.Remove(filepath.Join(module, "outputs.tf")) }, "outputs.tf is missing"},
	} {
		if err := tt.change(); err != nil {
			t.Fatal(err)
		}
		err := m.Verify(ctx, module)
		if !errors.Is(err, ErrModuleMismatch) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Verify() = %v, want %v naming %q", tt.name, err, ErrModuleMismatch, tt.want)
		}
	}

	plain := t.TempDir()
	writeTree(t, plain, map[string]string{
		"ferry.yaml": "apiVersion: ferry.dev/v1\nkind: Bundle\nname: plain\nversion: 1.0.0\nmanifests: m\n",
		"m/cm.yaml":  "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n",
	})
	mres, err := Push(ctx, c, plain, mustRef(t, reg.Addr+"/shop/plain:1.0.0"), PushOptions{PackOptions: PackOptions{Created: testCreated}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LoadModule(ctx, c, mustRef(t, mres.PinnedReference)); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "no terraform layer") {
		t.Errorf("LoadModule() of a bundle without a Terraform layer = %v, want %v", err, ErrNotFound)
	}
}

// TestPackRefusesTerraformLinks: a link in the Terraform directory is refused at pack time (the
// module installers unpack it as a file holding the link's target), a link among the plugins is not.
func TestPackRefusesTerraformLinks(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"ferry.yaml":        "apiVersion: ferry.dev/v1\nkind: Bundle\nname: shop\nversion: 1.0.0\nmanifests: m\nterraform: tf\nplugins: p\n",
		"m/cm.yaml":         "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n",
		"tf/main.tf":        "output \"ok\" {\n  value = true\n}\n",
		"p/tool.sh":         "echo\n",
		"tf/modules/.keep":  "",
		"p/sub/placeholder": "",
	})
	if err := os.Symlink("tool.sh", filepath.Join(dir, "p", "tool")); err != nil {
		t.Fatal(err)
	}
	if _, err := Pack(context.Background(), newTestClient(t), dir, PackOptions{Offline: true, Created: testCreated}); err != nil {
		t.Fatalf("Pack() with a link among the plugins = %v", err)
	}
	if err := os.Symlink("main.tf", filepath.Join(dir, "tf", "alias.tf")); err != nil {
		t.Fatal(err)
	}
	_, err := Pack(context.Background(), newTestClient(t), dir, PackOptions{Offline: true, Created: testCreated})
	if !errors.Is(err, ErrInvalidSpec) || !strings.Contains(err.Error(), "terraform/alias.tf is a symbolic link") {
		t.Errorf("Pack() with a link in the Terraform directory = %v, want %v naming terraform/alias.tf", err, ErrInvalidSpec)
	}
}

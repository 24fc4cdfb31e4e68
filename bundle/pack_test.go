package bundle

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

var testCreated = time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)

// writeTree writes files (path → content; a path ending in "*" is executable) under dir.
func writeTree(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for p, content := range files {
		mode := os.FileMode(0o644)
		if strings.HasSuffix(p, "*") {
			p, mode = strings.TrimSuffix(p, "*"), 0o755
		}
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(full, mode); err != nil {
			t.Fatal(err)
		}
	}
}

// releaseFiles is a small release with every layer, a render step and digest-pinned images, so it
// packs offline.
func releaseFiles() map[string]string {
	return map[string]string{
		"ferry.yaml": `apiVersion: ferry.dev/v1
kind: Bundle
name: shop
version: 1.4.0+build.7
description: test shop
source: https://git.example.com/shop
revision: abc123
images:
  api: registry.example.com/shop/api:1.4.0@` + dAPI + `
manifests: manifests
terraform: terraform
plugins: plugins
render:
  - name: info
    command: ["sh", "-c", "printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: info\ndata:\n  v: %s\n' \"$FERRY_BUNDLE_VERSION\""]
    output: generated/info.yaml
annotations:
  com.example.team: shop
`,
		"manifests/api.yaml":          "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\nspec:\n  template:\n    spec:\n      containers:\n        - name: api\n          image: registry.example.com/shop/api:1.4.0\n",
		"manifests/README.md":         "not yaml\n",
		"terraform/main.tf":           "resource \"terraform_data\" \"x\" {}\n",
		"terraform/.terraform/junk":   "x",
		"terraform/terraform.tfstate": "{}",
		"plugins/migrate.sh*":         "#!/bin/sh\necho migrate\n",
	}
}

func newTestClient(t testing.TB) *Client {
	t.Helper()
	c, err := NewClient(ClientOptions{Credentials: StaticCredentials(nil, nil), RetryBackoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func packDir(t testing.TB, dir string, opts PackOptions) *Packed {
	t.Helper()
	opts.Offline = true
	p, err := Pack(context.Background(), newTestClient(t), dir, opts)
	if err != nil {
		t.Fatalf("Pack() error = %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func TestPackDeterministic(t *testing.T) {
	a := t.TempDir()
	writeTree(t, a, releaseFiles())
	first := packDir(t, a, PackOptions{Created: testCreated})

	// The same content elsewhere, written in another order, with other mtimes and permissions.
	b := t.TempDir()
	writeTree(t, b, releaseFiles())
	old := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	filepath.Walk(b, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			os.Chtimes(p, old, old)
			if fi.Mode()&0o111 == 0 {
				os.Chmod(p, 0o600)
			} else {
				os.Chmod(p, 0o700)
			}
		}
		return nil
	})
	second := packDir(t, b, PackOptions{Created: testCreated})
	if first.Manifest.Digest != second.Manifest.Digest {
		t.Errorf("Pack() digest = %s on a copy, want %s", second.Manifest.Digest, first.Manifest.Digest)
	}
	for i := range first.Layers {
		if first.Layers[i].Digest != second.Layers[i].Digest {
			t.Errorf("Pack() layer %d digest = %s on a copy, want %s", i, second.Layers[i].Digest, first.Layers[i].Digest)
		}
	}

	t.Setenv("SOURCE_DATE_EPOCH", "1764115200")
	viaEnv := packDir(t, a, PackOptions{Created: time.Time{}})
	viaEnv2 := packDir(t, b, PackOptions{Created: time.Time{}})
	if viaEnv.Manifest.Digest != viaEnv2.Manifest.Digest {
		t.Errorf("Pack() with SOURCE_DATE_EPOCH = %s and %s, want equal", viaEnv.Manifest.Digest, viaEnv2.Manifest.Digest)
	}
	if viaEnv.Manifest.Digest == first.Manifest.Digest {
		t.Errorf("Pack() digest did not change with the creation time")
	}
	if got := viaEnv.Config.Created; got != "2025-11-26T00:00:00Z" {
		t.Errorf("Pack() created = %s, want 2025-11-26T00:00:00Z from SOURCE_DATE_EPOCH", got)
	}

	// A content change changes the digest.
	writeTree(t, b, map[string]string{"plugins/migrate.sh*": "#!/bin/sh\necho migrate v2\n"})
	if changed := packDir(t, b, PackOptions{Created: testCreated}); changed.Manifest.Digest == first.Manifest.Digest {
		t.Errorf("Pack() digest unchanged after a plugin changed")
	}
}

func TestPackLayout(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, releaseFiles())
	p := packDir(t, dir, PackOptions{Created: testCreated})
	var m ocispec.Manifest
	if err := json.Unmarshal(p.ManifestJSON, &m); err != nil {
		t.Fatal(err)
	}
	if err := checkConsumers(m); err != nil {
		t.Errorf("packed manifest breaks a consumer: %v", err)
	}
	if m.MediaType != ocispec.MediaTypeImageManifest || m.ArtifactType != ArtifactTypeOpenTofu || m.Config.MediaType != MediaTypeConfig {
		t.Errorf("manifest = %s/%s/%s, want image manifest, %s, %s", m.MediaType, m.ArtifactType, m.Config.MediaType, ArtifactTypeOpenTofu, MediaTypeConfig)
	}
	wantTypes := []string{MediaTypeManifests, MediaTypeTerraform, MediaTypePlugins}
	for i, l := range m.Layers {
		if l.MediaType != wantTypes[i] {
			t.Errorf("layer %d media type = %s, want %s", i, l.MediaType, wantTypes[i])
		}
	}
	wantAnn := map[string]string{
		AnnotationCreated: "2026-11-26T00:00:00Z", AnnotationTitle: "shop", AnnotationVersion: "1.4.0+build.7",
		AnnotationDescription: "test shop", AnnotationSource: "https://git.example.com/shop", AnnotationRevision: "abc123",
		"com.example.team": "shop",
	}
	for k, v := range wantAnn {
		if m.Annotations[k] != v {
			t.Errorf("annotation %s = %q, want %q", k, m.Annotations[k], v)
		}
	}
	// Config: images lock, layer roles, render record.
	if len(p.Config.Images) != 1 || p.Config.Images[0].Digest != dAPI || p.Config.Images[0].Tag != "1.4.0" || p.Config.Images[0].Repository != "registry.example.com/shop/api" {
		t.Errorf("config images = %+v", p.Config.Images)
	}
	if len(p.Config.Layers) != 3 || p.Config.Layers[0].Role != RoleManifests || p.Config.Layers[1].Role != RoleTerraform || p.Config.Layers[2].Role != RolePlugins {
		t.Errorf("config layers = %+v", p.Config.Layers)
	}
	if len(p.Config.Render) != 1 || p.Config.Render[0].Output != "generated/info.yaml" || !strings.HasPrefix(p.Config.Render[0].Digest, "sha256:") {
		t.Errorf("config render = %+v", p.Config.Render)
	}

	// The manifests layer: pinned image, render output, no excluded files.
	tarFiles := readTarGz(t, p, m.Layers[0])
	if got := tarFiles["api.yaml"]; !strings.Contains(got, "image: registry.example.com/shop/api@"+dAPI+"\n") {
		t.Errorf("manifests/api.yaml = %q, want the pinned image", got)
	}
	if got := tarFiles["generated/info.yaml"]; !strings.Contains(got, "v: 1.4.0+build.7") {
		t.Errorf("render output = %q, want the bundle version", got)
	}
	if len(p.Rewrites) != 1 || p.Rewrites[0].File != "api.yaml" || p.Rewrites[0].Line != 10 {
		t.Errorf("Rewrites = %+v, want api.yaml:10", p.Rewrites)
	}
	// The Terraform layer: zip root is the module root, no working state.
	zipFiles := readZip(t, p, m.Layers[1])
	if _, ok := zipFiles["main.tf"]; !ok || len(zipFiles) != 1 {
		t.Errorf("terraform.zip = %v, want only main.tf", keys(zipFiles))
	}
	// The plugin keeps its executable bit.
	pz := openZip(t, p, m.Layers[2])
	if len(pz.File) != 1 || pz.File[0].Mode().Perm() != 0o755 {
		t.Errorf("plugins.zip = %v, want migrate.sh 0755", pz.File)
	}
}

func TestPackWithoutTerraform(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"ferry.yaml":  "apiVersion: ferry.dev/v1\nkind: Bundle\nname: a\nversion: 1\nplugins: p\n",
		"p/plugin.sh": "echo",
	})
	p := packDir(t, dir, PackOptions{Created: testCreated})
	if p.Manifest.ArtifactType != ArtifactTypeBundle || len(p.Layers) != 1 || p.Layers[0].MediaType != MediaTypePlugins {
		t.Errorf("Pack() = %s with %v, want %s and one plugins layer", p.Manifest.ArtifactType, p.Layers, ArtifactTypeBundle)
	}
}

func TestPackErrors(t *testing.T) {
	base := "apiVersion: ferry.dev/v1\nkind: Bundle\nname: a\nversion: 1\n"
	tests := []struct {
		name  string
		files map[string]string
		want  error
	}{
		{"tag offline", map[string]string{"ferry.yaml": base + "plugins: p\nimages:\n  x: ghcr.io/a/b:1\n", "p/x": "x"}, ErrOfflineTag},
		{"render fails", map[string]string{"ferry.yaml": base + "render:\n  - {name: x, command: [sh, -c, 'echo boom >&2; exit 3'], output: x.yaml}\n"}, ErrRender},
		{"render prints no object", map[string]string{"ferry.yaml": base + "render:\n  - {name: x, command: [echo, hello], output: x.yaml}\n"}, ErrRender},
		{"render output exists", map[string]string{"ferry.yaml": base + "manifests: m\nrender:\n  - {name: x, command: [sh, -c, 'printf \"apiVersion: v1\\nkind: List\\n\"'], output: a.yaml}\n", "m/a.yaml": "apiVersion: v1\nkind: List\n"}, ErrRender},
		{"invalid manifest yaml", map[string]string{"ferry.yaml": base + "manifests: m\n", "m/a.yaml": "apiVersion: v1\nkind: [\n"}, ErrManifest},
		{"missing dir", map[string]string{"ferry.yaml": base + "manifests: m\n"}, ErrInvalidSpec},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeTree(t, dir, tt.files)
			_, err := Pack(context.Background(), newTestClient(t), dir, PackOptions{Offline: true, Created: testCreated})
			if !errors.Is(err, tt.want) {
				t.Errorf("Pack() error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestCheckLayout(t *testing.T) {
	title := func(s string) map[string]string { return map[string]string{AnnotationTitle: s} }
	good := func() ocispec.Manifest {
		return ocispec.Manifest{
			MediaType:    ocispec.MediaTypeImageManifest,
			ArtifactType: ArtifactTypeOpenTofu,
			Config:       ocispec.Descriptor{MediaType: MediaTypeConfig},
			Layers: []ocispec.Descriptor{
				{MediaType: MediaTypeManifests, Annotations: title("manifests.tar.gz")},
				{MediaType: MediaTypeTerraform, Annotations: title("terraform.zip")},
			},
			Annotations: map[string]string{AnnotationCreated: "2026-01-01T00:00:00Z"},
		}
	}
	tests := []struct {
		name   string
		mutate func(*ocispec.Manifest)
	}{
		{"index", func(m *ocispec.Manifest) { m.MediaType = ocispec.MediaTypeImageIndex }},
		{"helm config", func(m *ocispec.Manifest) { m.Config.MediaType = "application/vnd.cncf.helm.config.v1+json" }},
		{"eleven layers", func(m *ocispec.Manifest) {
			for i := 0; i < 9; i++ {
				m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: MediaTypePlugins, Annotations: title(strings.Repeat("p", i+1))})
			}
		}},
		{"second content layer", func(m *ocispec.Manifest) {
			m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: "application/vnd.oci.image.layer.v1.tar", Annotations: title("x")})
		}},
		{"content layer not first", func(m *ocispec.Manifest) { m.Layers[0], m.Layers[1] = m.Layers[1], m.Layers[0] }},
		{"two zips", func(m *ocispec.Manifest) {
			m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: MediaTypeTerraform, Annotations: title("b.zip")})
		}},
		{"zip without tofu type", func(m *ocispec.Manifest) { m.ArtifactType = ArtifactTypeBundle }},
		{"tofu type without zip", func(m *ocispec.Manifest) { m.Layers = m.Layers[:1] }},
		{"untitled", func(m *ocispec.Manifest) { m.Layers[1].Annotations = nil }},
		{"duplicate title", func(m *ocispec.Manifest) { m.Layers[1].Annotations = title("manifests.tar.gz") }},
		{"nested title", func(m *ocispec.Manifest) { m.Layers[1].Annotations = title("a/b.zip") }},
		{"unpack annotation", func(m *ocispec.Manifest) { m.Layers[0].Annotations["io.deis.oras.content.unpack"] = "true" }},
		{"no created", func(m *ocispec.Manifest) { m.Annotations = nil }},
		{"bad created", func(m *ocispec.Manifest) { m.Annotations[AnnotationCreated] = "yesterday" }},
	}
	if err := CheckLayout(good()); err != nil {
		t.Fatalf("CheckLayout(good) = %v, want nil", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := good()
			tt.mutate(&m)
			if err := CheckLayout(m); !errors.Is(err, ErrLayout) {
				t.Errorf("CheckLayout() = %v, want ErrLayout", err)
			}
		})
	}
}

func blob(t testing.TB, p *Packed, d ocispec.Descriptor) []byte {
	t.Helper()
	rc, err := p.Open(d)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readTarGz(t testing.TB, p *Packed, d ocispec.Descriptor) map[string]string {
	t.Helper()
	return tarGzFiles(t, blob(t, p, d))
}

func tarGzFiles(t testing.TB, data []byte) map[string]string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	out := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			b, _ := io.ReadAll(tr)
			out[h.Name] = string(b)
		}
	}
}

func openZip(t testing.TB, p *Packed, d ocispec.Descriptor) *zip.Reader {
	t.Helper()
	b := blob(t, p, d)
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	return zr
}

func readZip(t testing.TB, p *Packed, d ocispec.Descriptor) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, f := range openZip(t, p, d).File {
		if f.Mode().IsRegular() {
			rc, _ := f.Open()
			b, _ := io.ReadAll(rc)
			rc.Close()
			out[f.Name] = string(b)
		}
	}
	return out
}

func keys(m map[string]string) []string { return sortedKeys(m) }

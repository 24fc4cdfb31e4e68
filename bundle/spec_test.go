package bundle

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const validSpec = `apiVersion: ferry.dev/v1
kind: Bundle
name: shop
version: 1.4.0
description: Web shop
source: https://git.example.com/shop
images:
  api: registry.example.com/shop/api:1.4.0
  web: nginx:1.27@sha256:0000000000000000000000000000000000000000000000000000000000000000
manifests: manifests
terraform: terraform
render:
  - name: info
    command: ["sh", "-c", "echo hi"]
    output: info.yaml
    env:
      MODE: prod
annotations:
  com.example.team: shop
`

func TestParseSpecValid(t *testing.T) {
	s, err := ParseSpec([]byte(validSpec), "ferry.yaml")
	if err != nil {
		t.Fatalf("ParseSpec() error = %v", err)
	}
	if s.Name != "shop" || s.Version != "1.4.0" || s.Manifests != "manifests" || s.Terraform != "terraform" {
		t.Errorf("ParseSpec() = %+v, want name shop, version 1.4.0, manifests and terraform set", s)
	}
	if got, want := s.Images["web"], "nginx:1.27@sha256:0000000000000000000000000000000000000000000000000000000000000000"; got != want {
		t.Errorf("ParseSpec().Images[web] = %q, want %q", got, want)
	}
	if len(s.Render) != 1 || s.Render[0].Dir != "." || s.Render[0].Env["MODE"] != "prod" {
		t.Errorf("ParseSpec().Render = %+v, want one step with dir . and env MODE", s.Render)
	}
}

func TestParseSpecVersionKeptAsWritten(t *testing.T) {
	s, err := ParseSpec([]byte("apiVersion: ferry.dev/v1\nkind: Bundle\nname: a\nversion: 1.10\nplugins: p\n"), "ferry.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if s.Version != "1.10" {
		t.Errorf("ParseSpec().Version = %q, want %q (not a float)", s.Version, "1.10")
	}
}

func TestParseSpecInvalid(t *testing.T) {
	const head = "apiVersion: ferry.dev/v1\nkind: Bundle\nname: shop\nversion: 1.0.0\n"
	tests := []struct {
		name string
		spec string
		want string
	}{
		{"empty", "", "ferry.yaml: file is empty; start with \"apiVersion: ferry.dev/v1\""},
		{"not yaml", "name: [", "ferry.yaml:1: not valid YAML: line 1: did not find expected node content"},
		{"list at top", "- a\n- b\n", "ferry.yaml:1: top level must be a mapping of fields"},
		{"two documents", head + "plugins: p\n---\nname: x\n", "ferry.yaml:6: more than one YAML document; keep a single document"},
		{"unknown field", head + "plugins: p\nimagez: {}\n", "ferry.yaml:6: imagez: unknown field; known fields are apiVersion, kind, name, version, description, source, revision, images, manifests, terraform, plugins, render, annotations"},
		{"missing apiVersion", "kind: Bundle\nname: a\nversion: 1\nplugins: p\n", "ferry.yaml:1: apiVersion: is required"},
		{"wrong apiVersion", "apiVersion: ferry.dev/v2\nkind: Bundle\nname: a\nversion: 1\nplugins: p\n", "ferry.yaml:1: apiVersion: unsupported version \"ferry.dev/v2\"; this ferry reads \"ferry.dev/v1\""},
		{"wrong kind", "apiVersion: ferry.dev/v1\nkind: Chart\nname: a\nversion: 1\nplugins: p\n", "ferry.yaml:2: kind: must be \"Bundle\", got \"Chart\""},
		{"missing name", "apiVersion: ferry.dev/v1\nkind: Bundle\nversion: 1\nplugins: p\n", "ferry.yaml:1: name: is required"},
		{"bad name", "apiVersion: ferry.dev/v1\nkind: Bundle\nname: Shop_1\nversion: 1\nplugins: p\n", "ferry.yaml:3: name: \"Shop_1\" is not a valid name; use 1-63 lowercase letters, digits and '-', starting and ending with a letter or digit"},
		{"empty name", "apiVersion: ferry.dev/v1\nkind: Bundle\nname:\nversion: 1\nplugins: p\n", "ferry.yaml:3: name: must not be empty"},
		{"bad version", "apiVersion: ferry.dev/v1\nkind: Bundle\nname: a\nversion: -1 beta\nplugins: p\n", "ferry.yaml:4: version: \"-1 beta\" is not a valid version; use up to 128 letters, digits and '.', '_', '-', '+', not starting with '.', '-' or '+'"},
		{"version is a list", "apiVersion: ferry.dev/v1\nkind: Bundle\nname: a\nversion: [1]\nplugins: p\n", "ferry.yaml:4: version: must be a string, got a list"},
		{"no content", head, "ferry.yaml:1: manifests: at least one of manifests, terraform, plugins or render is required"},
		{"bad source", head + "plugins: p\nsource: git.example.com/shop\n", "ferry.yaml:6: source: \"git.example.com/shop\" is not an absolute URL; use e.g. https://git.example.com/team/repo"},
		{"revision with space", head + "plugins: p\nrevision: a b\n", "ferry.yaml:6: revision: \"a b\" must not contain whitespace"},
		{"images not a map", head + "plugins: p\nimages: [a]\n", "ferry.yaml:6: images: must be a mapping of strings, got a list"},
		{"image without tag", head + "plugins: p\nimages:\n  api: ghcr.io/org/api\n", "ferry.yaml:7: images.api: \"ghcr.io/org/api\" has no tag or digest; pin a version, e.g. ghcr.io/org/api:1.0.0"},
		{"image bad digest", head + "plugins: p\nimages:\n  api: ghcr.io/org/api@sha256:abc\n", "ferry.yaml:7: images.api: \"ghcr.io/org/api@sha256:abc\" has an invalid digest \"sha256:abc\"; digests look like sha256:<64 hex>"},
		{"image uppercase repo", head + "plugins: p\nimages:\n  api: ghcr.io/Org/api:1\n", "ferry.yaml:7: images.api: \"ghcr.io/Org/api:1\" has an invalid repository \"Org/api\"; use lowercase letters, digits and separators"},
		{"image bad name", head + "plugins: p\nimages:\n  API: ghcr.io/org/api:1\n", "ferry.yaml:7: images.API: \"API\" is not a valid image name; use lowercase letters, digits, '.', '_' and '-'"},
		{"duplicate image", head + "plugins: p\nimages:\n  api: a.io/x:1\n  api: a.io/y:1\n", "ferry.yaml:8: images.api: defined more than once; keep one"},
		{"absolute dir", head + "manifests: /etc\n", "ferry.yaml:5: manifests: \"/etc\" must be relative to the release directory"},
		{"escaping dir", head + "terraform: ../infra\n", "ferry.yaml:5: terraform: \"../infra\" leaves the release directory; keep it inside"},
		{"backslash dir", head + "plugins: a\\b\n", "ferry.yaml:5: plugins: \"a\\\\b\" must use '/' as separator"},
		{"render not a list", head + "render: {name: x}\n", "ferry.yaml:5: render: must be a list of steps, got a mapping"},
		{"render missing command", head + "render:\n  - name: x\n    output: x.yaml\n", "ferry.yaml:6: render[0].command: is required"},
		{"render command string", head + "render:\n  - name: x\n    command: make\n    output: x.yaml\n", "ferry.yaml:7: render[0].command: must be a list of arguments, e.g. [\"sh\", \"render.sh\"]"},
		{"render bad output ext", head + "render:\n  - name: x\n    command: [a]\n    output: x.txt\n", "ferry.yaml:8: render[0].output: \"x.txt\" must end in .yaml, .yml or .json so Argo CD reads it"},
		{"render duplicate name", head + "render:\n  - {name: x, command: [a], output: a.yaml}\n  - {name: x, command: [a], output: b.yaml}\n", "ferry.yaml:7: render[1].name: step \"x\" is defined more than once; give each step its own name"},
		{"render same output", head + "render:\n  - {name: x, command: [a], output: a.yaml}\n  - {name: y, command: [a], output: ./a.yaml}\n", "ferry.yaml:7: render[1].output: \"./a.yaml\" is written by another step; give each step its own output"},
		{"render unknown field", head + "render:\n  - {name: x, command: [a], output: a.yaml, shell: true}\n", "ferry.yaml:6: render[0].shell: unknown field; known fields are name, command, dir, output, env"},
		{"render bad env", head + "render:\n  - {name: x, command: [a], output: a.yaml, env: {1X: y}}\n", "ferry.yaml:6: render[0].env.1X: is not a valid environment variable name"},
		{"reserved annotation", head + "plugins: p\nannotations:\n  org.opencontainers.image.version: 2\n", "ferry.yaml:7: annotations.org.opencontainers.image.version: is set by ferry; use version instead"},
		{"annotation not string", head + "plugins: p\nannotations:\n  team: {a: b}\n", "ferry.yaml:7: annotations.team: must be a string, got a mapping"},
		{"duplicate field", head + "plugins: p\nplugins: q\n", "ferry.yaml:6: plugins: defined more than once; keep one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseSpec([]byte(tt.spec), "ferry.yaml")
			if err == nil {
				t.Fatalf("ParseSpec() error = nil, want %q", tt.want)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("ParseSpec() error = %q, want %q", got, tt.want)
			}
			if !errors.Is(err, ErrInvalidSpec) {
				t.Errorf("ParseSpec() error = %v, want errors.Is ErrInvalidSpec", err)
			}
		})
	}
}

func TestParseSpecReportsEveryProblem(t *testing.T) {
	_, err := ParseSpec([]byte("apiVersion: ferry.dev/v1\nkind: Bundle\nname: BAD\nversion: 1\nplugins: /abs\nextra: 1\n"), "ferry.yaml")
	if err == nil {
		t.Fatal("ParseSpec() error = nil, want three problems")
	}
	if got := strings.Count(err.Error(), "\n") + 1; got != 3 {
		t.Errorf("ParseSpec() reported %d problems, want 3:\n%v", got, err)
	}
}

func TestLoadSpecChecksDirectories(t *testing.T) {
	dir := t.TempDir()
	spec := "apiVersion: ferry.dev/v1\nkind: Bundle\nname: a\nversion: 1\nmanifests: manifests\nplugins: plugin.sh\n"
	if err := os.WriteFile(filepath.Join(dir, SpecFileName), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "plugin.sh"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := LoadSpec(dir)
	file := filepath.Join(dir, SpecFileName)
	want := file + ":5: manifests: directory \"manifests\" does not exist; create it or remove the field\n" +
		file + ":6: plugins: \"plugin.sh\" is not a directory"
	if err == nil || err.Error() != want {
		t.Errorf("LoadSpec() error = %v, want %q", err, want)
	}
	if _, err := LoadSpec(t.TempDir()); !errors.Is(err, ErrInvalidSpec) {
		t.Errorf("LoadSpec(empty dir) error = %v, want ErrInvalidSpec", err)
	}
}

func FuzzParseSpec(f *testing.F) {
	f.Add([]byte(validSpec))
	f.Add([]byte("apiVersion: ferry.dev/v1\nkind: Bundle\nname: a\nversion: 1\nplugins: p\n"))
	f.Add([]byte("render:\n  - {name: x, command: [a], output: a.yaml}\n"))
	f.Add([]byte("images: &a {x: *a}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseSpec(data, "ferry.yaml")
		if err != nil {
			if !errors.Is(err, ErrInvalidSpec) {
				t.Fatalf("ParseSpec() error = %v, want ErrInvalidSpec", err)
			}
			return
		}
		if s.Name == "" || s.Version == "" || s.APIVersion != SpecAPIVersion || s.Kind != SpecKind {
			t.Fatalf("ParseSpec() accepted a spec without name/version/apiVersion/kind: %+v", s)
		}
		for _, rel := range []string{s.Manifests, s.Terraform, s.Plugins} {
			if rel != "" && checkRelPath(rel) != "" {
				t.Fatalf("ParseSpec() accepted an escaping path %q", rel)
			}
		}
	})
}

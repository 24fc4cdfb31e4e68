package bundle

import (
	"errors"
	"strings"
	"testing"
)

const (
	dAPI = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	dWeb = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
)

var testLocks = []ImageLock{
	{Name: "api", Reference: "registry.example.com/shop/api:1.4.0", Repository: "registry.example.com/shop/api", Tag: "1.4.0", Digest: dAPI},
	{Name: "nginx", Reference: "nginx:1.27", Repository: "docker.io/library/nginx", Tag: "1.27", Digest: dWeb},
}

func TestRewriteImages(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		want  string
		lines []int
		notes []string
	}{
		{
			name: "deployment container and init container, comments kept",
			in: `# api
apiVersion: apps/v1
kind: Deployment
spec:
  template:
    spec:
      initContainers:
        - name: migrate
          image: registry.example.com/shop/api:1.4.0   # migrations
      containers:
        - name: api
          image: registry.example.com/shop/api:1.4.0
`,
			want: `# api
apiVersion: apps/v1
kind: Deployment
spec:
  template:
    spec:
      initContainers:
        - name: migrate
          image: registry.example.com/shop/api@` + dAPI + `   # migrations
      containers:
        - name: api
          image: registry.example.com/shop/api@` + dAPI + `
`,
			lines: []int{9, 12},
			notes: []string{"", ""},
		},
		{
			name:  "double and single quotes kept",
			in:    "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - image: \"registry.example.com/shop/api:1.4.0\"\n  - image: 'nginx:1.27'\n",
			want:  "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - image: \"registry.example.com/shop/api@" + dAPI + "\"\n  - image: 'docker.io/library/nginx@" + dWeb + "'\n",
			lines: []int{5, 6},
			notes: []string{"", ""},
		},
		{
			name:  "cronjob nested, docker hub short name, other tag noted",
			in:    "apiVersion: batch/v1\nkind: CronJob\nspec:\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          containers:\n          - image: nginx:1.25\n",
			want:  "apiVersion: batch/v1\nkind: CronJob\nspec:\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          containers:\n          - image: docker.io/library/nginx@" + dWeb + "\n",
			lines: []int{9},
			notes: []string{`tag "1.25" differs from ferry.yaml's "1.27"`},
		},
		{
			name:  "other digest replaced and noted",
			in:    "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - image: registry.example.com/shop/api@" + dWeb + "\n",
			want:  "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - image: registry.example.com/shop/api@" + dAPI + "\n",
			lines: []int{5},
			notes: []string{"digest " + dWeb + " replaced by the locked " + dAPI},
		},
		{
			name: "untouched: unknown repository, already pinned, non-Kubernetes document, non-image keys",
			in: "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - image: ghcr.io/other/app:1\n  - image: registry.example.com/shop/api@" + dAPI + "\n" +
				"---\nimage: registry.example.com/shop/api:1.4.0\n---\napiVersion: v1\nkind: ConfigMap\ndata:\n  img: registry.example.com/shop/api:1.4.0\n",
		},
		{
			name:  "multi-document with empty documents",
			in:    "---\n---\napiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - image: nginx:1.27\n---\n",
			want:  "---\n---\napiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - image: docker.io/library/nginx@" + dWeb + "\n---\n",
			lines: []int{7},
			notes: []string{""},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, rewrites, err := RewriteImages([]byte(tt.in), "m.yaml", testLocks)
			if err != nil {
				t.Fatalf("RewriteImages() error = %v", err)
			}
			want := tt.want
			if want == "" {
				want = tt.in
			}
			if string(got) != want {
				t.Errorf("RewriteImages() =\n%s\nwant\n%s", got, want)
			}
			if len(rewrites) != len(tt.lines) {
				t.Fatalf("RewriteImages() rewrites = %+v, want %d", rewrites, len(tt.lines))
			}
			for i, rw := range rewrites {
				if rw.Line != tt.lines[i] || rw.Note != tt.notes[i] || rw.File != "m.yaml" || !strings.Contains(rw.To, "@sha256:") {
					t.Errorf("RewriteImages() rewrite %d = %+v, want line %d note %q", i, rw, tt.lines[i], tt.notes[i])
				}
			}
		})
	}
}

func TestRewriteImagesErrors(t *testing.T) {
	tests := []struct{ name, in string }{
		{"invalid yaml", "apiVersion: v1\nkind: Pod\nspec: [\n"},
		{"folded image", "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - image: >-\n      nginx:1.27\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := RewriteImages([]byte(tt.in), "m.yaml", testLocks)
			if !errors.Is(err, ErrManifest) {
				t.Errorf("RewriteImages() error = %v, want ErrManifest", err)
			}
		})
	}
}

func TestParseImageReference(t *testing.T) {
	tests := []struct {
		in                        string
		repo, tag, digest, errSub string
	}{
		{in: "nginx:1.27", repo: "docker.io/library/nginx", tag: "1.27"},
		{in: "bitnami/redis:7", repo: "docker.io/bitnami/redis", tag: "7"},
		{in: "localhost/app:1", repo: "localhost/app", tag: "1"},
		{in: "127.0.0.1:5000/a/b/c:v1@" + dAPI, repo: "127.0.0.1:5000/a/b/c", tag: "v1", digest: dAPI},
		{in: "ghcr.io/org/app@" + dAPI, repo: "ghcr.io/org/app", digest: dAPI},
		{in: "ghcr.io/org/app", errSub: "has no tag or digest"},
		{in: "ghcr.io/org/app:bad tag", errSub: "invalid"},
		{in: " nginx:1", errSub: "is not an image reference"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseImageReference(tt.in)
			if tt.errSub != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errSub) {
					t.Errorf("ParseImageReference() error = %v, want containing %q", err, tt.errSub)
				}
				return
			}
			if err != nil || got.Repository() != tt.repo || got.Tag != tt.tag || got.Digest != tt.digest {
				t.Errorf("ParseImageReference() = %+v, %v, want %s %s %s", got, err, tt.repo, tt.tag, tt.digest)
			}
		})
	}
}

func TestParseReference(t *testing.T) {
	tests := []struct {
		in   string
		want Reference
		ok   bool
	}{
		{"registry.example.com/shop/bundle:1.4.0", Reference{Registry: "registry.example.com", Repository: "shop/bundle", Tag: "1.4.0"}, true},
		{"127.0.0.1:5000/shop@" + dAPI, Reference{Registry: "127.0.0.1:5000", Repository: "shop", Digest: dAPI}, true},
		{"oci-layout:/tmp/x:1.0", Reference{Layout: "/tmp/x", Tag: "1.0"}, true},
		{"oci-layout:rel/dir", Reference{Layout: "rel/dir"}, true},
		{"oci-layout:/tmp/x@" + dAPI, Reference{Layout: "/tmp/x", Digest: dAPI}, true},
		{"shop/bundle:1", Reference{}, false},
		{"oci-layout:", Reference{}, false},
		{"registry.example.com/Shop:1", Reference{}, false},
		{"registry.example.com/shop@sha256:12", Reference{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseReference(tt.in)
			if (err == nil) != tt.ok {
				t.Fatalf("ParseReference() error = %v, want ok %v", err, tt.ok)
			}
			if !tt.ok {
				if !errors.Is(err, ErrInvalidReference) {
					t.Errorf("ParseReference() error = %v, want ErrInvalidReference", err)
				}
				return
			}
			if got != tt.want || got.String() != tt.in {
				t.Errorf("ParseReference() = %+v (%s), want %+v", got, got, tt.want)
			}
		})
	}
}

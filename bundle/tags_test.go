package bundle

import (
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-dev/terraform-provider-ferry/internal/testenv"
)

// TestPushTagsAllOrRestore pushes a new bundle with two tags through a proxy that fails the second
// tag's PUT: the first tag goes back where it was (its previous digest, or removed when it was new),
// and the error says what became of each tag.
func TestPushTagsAllOrRestore(t *testing.T) {
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	ctx := context.Background()
	v1, v2 := t.TempDir(), t.TempDir()
	files := map[string]string{
		"ferry.yaml": "apiVersion: ferry.dev/v1\nkind: Bundle\nname: a\nversion: 1.0.0\nplugins: p\n",
		"p/x":        "v1",
	}
	writeTree(t, v1, files)
	files["p/x"] = "v2"
	writeTree(t, v2, files)
	opts := PushOptions{PackOptions: PackOptions{Created: testCreated}}
	direct := clientFor(t, nil, ClientOptions{})

	// failTag fails the first PUT of tag with 500 (one attempt: transient, so tag is put
	// back as well); deleteStatus, if set, answers every tag DELETE.
	failTag := func(repo, tag string, deleteStatus int) *hookProxy {
		var failed atomic.Bool
		return startHookProxy(t, reg.RawAddr, func(_ *hookProxy, w http.ResponseWriter, r *http.Request) bool {
			switch {
			case r.Method == http.MethodPut && r.URL.Path == "/v2/"+repo+"/manifests/"+tag && !failed.Swap(true):
				_, _ = io.Copy(io.Discard, r.Body)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusInternalServerError)
				_, _ = io.WriteString(w, `{"errors":[{"code":"UNKNOWN","message":"test: injected"}]}`)
				return true
			case r.Method == http.MethodDelete && deleteStatus != 0:
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(deleteStatus)
				_, _ = io.WriteString(w, `{"errors":[{"code":"UNSUPPORTED","message":"The operation is unsupported."}]}`)
				return true
			}
			return false
		})
	}
	tests := []struct {
		name         string
		ref, extra   string // the push's reference tag and --tag; extra's PUT fails
		deleteStatus int
		want         []string // in the error
		wantTags     map[string]string
	}{
		{
			name: "existing tag put back", ref: "stable", extra: "fresh",
			want:     []string{"push tag fresh to ", "after 1 attempt", "stable put back on OLD", "fresh not created"},
			wantTags: map[string]string{"stable": "OLD", "fresh": ""},
		},
		{
			name: "new tag removed", ref: "fresh", extra: "stable",
			want:     []string{"push tag stable to ", "fresh removed (it was new)", "stable put back on OLD"},
			wantTags: map[string]string{"stable": "OLD", "fresh": ""},
		},
		{
			name: "registry cannot delete tags", ref: "fresh", extra: "stable", deleteStatus: http.StatusMethodNotAllowed,
			want:     []string{"fresh (new) left on NEW: the registry does not support deleting tags", "stable put back on OLD"},
			wantTags: map[string]string{"stable": "OLD", "fresh": "NEW"},
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo := "tags/r" + string(rune('a'+i))
			old, err := Push(ctx, direct, v1, mustRef(t, reg.Addr+"/"+repo+":stable"), opts)
			if err != nil {
				t.Fatalf("Push(v1) error = %v", err)
			}
			proxy := failTag(repo, tt.extra, tt.deleteStatus)
			c := clientFor(t, nil, ClientOptions{MaxAttempts: 1})
			o := opts
			o.Tags = []string{tt.extra}
			_, err = Push(ctx, c, v2, mustRef(t, proxy.Addr+"/"+repo+":"+tt.ref), o)
			if !errors.Is(err, ErrUnreachable) {
				t.Fatalf("Push() error = %v, want ErrUnreachable", err)
			}
			t.Logf("Push() error = %v", err)
			p, perr := Pack(ctx, c, v2, opts.PackOptions)
			if perr != nil {
				t.Fatal(perr)
			}
			p.Close()
			digests := strings.NewReplacer("OLD", old.Digest, "NEW", p.Manifest.Digest.String())
			for _, w := range tt.want {
				if w = digests.Replace(w); !strings.Contains(err.Error(), w) {
					t.Errorf("Push() error = %v\nwant it to contain %q", err, w)
				}
			}
			tags := reg.ListTags(t, repo)
			for tag, want := range tt.wantTags {
				if want == "" {
					if slices.Contains(tags, tag) {
						t.Errorf("tag %s exists after the failed push, want it absent (tags %v)", tag, tags)
					}
					continue
				}
				desc, err := reg.Resolve(t, repo, tag)
				if want = digests.Replace(want); err != nil || desc.Digest.String() != want {
					t.Errorf("tag %s = %v (%v), want %s", tag, desc.Digest, err, want)
				}
			}
		})
	}
}

// TestPushTagsCancelled: a push cancelled (Ctrl-C) while its second tag is being written still puts
// the first tag back, and the error says so.
func TestPushTagsCancelled(t *testing.T) {
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	v1, v2 := t.TempDir(), t.TempDir()
	files := map[string]string{"ferry.yaml": "apiVersion: ferry.dev/v1\nkind: Bundle\nname: a\nversion: 1.0.0\nplugins: p\n", "p/x": "v1"}
	writeTree(t, v1, files)
	files["p/x"] = "v2"
	writeTree(t, v2, files)
	opts := PushOptions{PackOptions: PackOptions{Created: testCreated}}
	old, err := Push(context.Background(), clientFor(t, nil, ClientOptions{}), v1, mustRef(t, reg.Addr+"/tags/cancel:stable"), opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	proxy := startHookProxy(t, reg.RawAddr, func(_ *hookProxy, w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPut && r.URL.Path == "/v2/tags/cancel/manifests/fresh" {
			_, _ = io.Copy(io.Discard, r.Body) // the server notices a closed connection only after the body
			cancel()                           // Ctrl-C while the tag is on its way
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
			return true
		}
		return false
	})
	o := opts
	o.Tags = []string{"fresh"}
	_, err = Push(ctx, clientFor(t, nil, ClientOptions{}), v2, mustRef(t, proxy.Addr+"/tags/cancel:stable"), o)
	var tagsErr *TagsError
	if !errors.As(err, &tagsErr) {
		t.Fatalf("Push() error = %v, want a TagsError", err)
	}
	if want := "stable put back on " + old.Digest; !strings.Contains(tagsErr.Outcome(), want) {
		t.Errorf("Outcome() = %q, want it to contain %q", tagsErr.Outcome(), want)
	}
	if desc, err := reg.Resolve(t, "tags/cancel", "stable"); err != nil || desc.Digest.String() != old.Digest {
		t.Errorf("tag stable = %v (%v), want %s", desc.Digest, err, old.Digest)
	}
	if slices.Contains(reg.ListTags(t, "tags/cancel"), "fresh") {
		t.Errorf("tag fresh exists after the cancelled push")
	}
}

package bundle_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content/oci"
	"oras.land/oras-go/v2/errdef"

	"github.com/ferry-dev/terraform-provider-ferry/bundle"
	"github.com/ferry-dev/terraform-provider-ferry/internal/bundletest"
)

// fuzzTemplate turns a valid bundle into the fuzzer's inputs: manifest and config JSON in which the
// layers' digests and sizes are the placeholders @D0@…@S2@ (the config's @CD@ and @CS@), so that
// mutated JSON still points at the stored blobs, and the three layers' bytes.
func fuzzTemplate(b *bundletest.Bundle) (manifest, config []byte, layers [3][]byte) {
	cfg, _ := json.Marshal(b.Config)
	m := b.Manifest
	m.Config = ocispec.Descriptor{MediaType: bundle.MediaTypeConfig, Digest: "@CD@", Size: -100}
	for i, l := range b.Manifest.Layers {
		layers[i] = b.Blobs[l.Digest]
		ph := "@D" + strconv.Itoa(i) + "@"
		cfg = bytes.ReplaceAll(cfg, []byte(l.Digest.String()), []byte(ph))
		m.Layers[i].Digest = digest.Digest(ph)
		cfg = bytes.ReplaceAll(cfg, []byte(`"size":`+strconv.FormatInt(l.Size, 10)), []byte(`"size":"@S`+strconv.Itoa(i)+`@"`))
		m.Layers[i].Size = int64(-201 - i)
	}
	raw, _ := json.Marshal(m)
	for i := range 3 {
		raw = bytes.Replace(raw, []byte(`"size":`+strconv.Itoa(-201-i)), []byte(`"size":"@S`+strconv.Itoa(i)+`@"`), 1)
	}
	raw = bytes.Replace(raw, []byte(`"size":-100`), []byte(`"size":"@CS@"`), 1)
	return raw, cfg, layers
}

// fill replaces the placeholders: a size's quotes go too, since sizes are numbers.
func fill(tmpl []byte, vals map[string]string) []byte {
	for k, v := range vals {
		if strings.Contains(k, "S") {
			tmpl = bytes.ReplaceAll(tmpl, []byte(`"`+k+`"`), []byte(v))
		}
		tmpl = bytes.ReplaceAll(tmpl, []byte(k), []byte(v))
	}
	return tmpl
}

// FuzzPull stores arbitrary manifest, config and layer bytes in an OCI layout and runs Inspect and Pull
// on them: whatever the bytes, nothing outside the output directory is touched, and a failed pull leaves
// the output directory as it was.
func FuzzPull(f *testing.F) {
	valid := bundletest.Valid()
	m, cfg, l := fuzzTemplate(valid)
	f.Add(m, cfg, l[0], l[1], l[2])
	for _, role := range []string{"../escaped", "/abs", ".", "", "terraform"} {
		b := bundletest.Valid()
		b.Config.Layers[0].Role = role
		m, cfg, l := fuzzTemplate(b)
		f.Add(m, cfg, l[0], l[1], l[2])
	}
	f.Add(m, cfg, bundletest.TarGz(bundletest.Entry{Name: "../x", Body: "x"}), l[1],
		bundletest.Zip(bundletest.Entry{Name: "l", Link: "../.."}, bundletest.Entry{Name: "l/x", Body: "x"}))
	client, err := bundle.NewClient(bundle.ClientOptions{Credentials: bundle.StaticCredentials(nil, nil)})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, manifest, config, l0, l1, l2 []byte) {
		base, out := bundletest.Sandbox(t)
		layout := filepath.Join(base, "layout")
		store, err := oci.New(layout)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		vals := map[string]string{}
		for i, data := range [][]byte{l0, l1, l2} {
			d := digest.FromBytes(data)
			vals["@D"+strconv.Itoa(i)+"@"] = d.String()
			vals["@S"+strconv.Itoa(i)+"@"] = strconv.Itoa(len(data))
			if err := store.Push(ctx, ocispec.Descriptor{MediaType: "application/octet-stream", Digest: d, Size: int64(len(data))}, bytes.NewReader(data)); err != nil && !errors.Is(err, errdef.ErrAlreadyExists) {
				t.Skip(err)
			}
		}
		config = fill(config, vals)
		vals["@CD@"] = digest.FromBytes(config).String()
		vals["@CS@"] = strconv.Itoa(len(config))
		if err := store.Push(ctx, ocispec.Descriptor{MediaType: bundle.MediaTypeConfig, Digest: digest.FromBytes(config), Size: int64(len(config))}, bytes.NewReader(config)); err != nil && !errors.Is(err, errdef.ErrAlreadyExists) {
			t.Skip(err)
		}
		manifest = fill(manifest, vals)
		desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(manifest), Size: int64(len(manifest))}
		if err := store.Push(ctx, desc, bytes.NewReader(manifest)); err != nil && !errors.Is(err, errdef.ErrAlreadyExists) {
			t.Skip(err)
		}
		if err := store.Tag(ctx, desc, "t"); err != nil {
			t.Skip(err)
		}
		before := bundletest.Snapshot(t, base)
		ref, err := bundle.ParseReference("oci-layout:" + layout + ":t")
		if err != nil {
			t.Fatal(err)
		}
		_, inspectErr := bundle.Inspect(ctx, client, ref)
		res, pullErr := bundle.Pull(ctx, client, ref, out, bundle.PullOptions{})
		t.Logf("inspect: %v; pull: %v", inspectErr, pullErr)
		if inspectErr != nil && pullErr == nil {
			t.Fatalf("Inspect failed (%v) but Pull succeeded", inspectErr)
		}
		after := bundletest.Snapshot(t, base)
		if pullErr == nil {
			// Only the roles and the lock file are new, inside out.
			for _, role := range append(res.Roles, bundle.LockFileName) {
				prefix := filepath.Join(out, role)
				dropUnder(after, prefix)
			}
		}
		// The layout is the store's own business.
		dropUnder(before, layout)
		dropUnder(after, layout)
		bundletest.SameTree(t, "after the pull", before, after)
	})
}

// dropUnder deletes dir and every path below it from snap.
func dropUnder(snap map[string]string, dir string) {
	for p := range snap {
		if p == dir || strings.HasPrefix(p, dir+string(filepath.Separator)) {
			delete(snap, p)
		}
	}
}

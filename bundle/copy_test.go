package bundle

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry"

	"github.com/ferry-dev/terraform-provider-ferry/internal/testenv"
)

// TestCopy relocates a signed bundle that pins a multi-platform image index (itself signed)
// between two real registries, directly and through an archive: every digest is unchanged, the
// images land under DST/images/<original repository> with all platforms and their signature, the
// signature and the attestations verify at the destination with the same key, the relocation
// record maps each image; a second copy sends nothing; a copy within one registry mounts its blobs;
// a copy cancelled midway leaves no tag and
// completes when run again; a tampered archive fails with ErrDigestMismatch and tags nothing.
func TestCopy(t *testing.T) {
	src := testenv.StartRegistry(t, testenv.RegistryOptions{})
	dst := testenv.StartRegistry(t, testenv.RegistryOptions{})
	c := clientFor(t, nil, ClientOptions{})
	ctx := context.Background()
	key, trusted := signingKeys(t, "release", "pw")

	index := src.PushIndex(t, "shop/api", "1.4.0", "api")
	worker := src.PushImage(t, "shop/worker", "2.0.0", "worker")
	imageSig, err := attachSignature(ctx, src.Repository(t, "shop/api"), index, key, testCreated)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"ferry.yaml": "apiVersion: ferry.dev/v1\nkind: Bundle\nname: shop\nversion: 1.4.0\nimages:\n  api: " + src.Addr + "/shop/api:1.4.0\n  worker: " + src.Addr + "/shop/worker@" + worker.Digest.String() + "\nmanifests: m\n",
		"m/cm.yaml":  "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  value: x\n",
	})
	pushed, err := Push(ctx, c, dir, mustRef(t, src.Addr+"/shop/bundle:1.4.0"), PushOptions{PackOptions: PackOptions{Created: testCreated}, SignKey: key})
	if err != nil {
		t.Fatal(err)
	}
	verifyAt := func(ref string) {
		t.Helper()
		v, err := Verify(ctx, c, mustRef(t, ref), []TrustedKey{trusted}, PredicateCycloneDX, PredicateSLSAProvenance)
		if err != nil || v.Digest != pushed.Digest {
			t.Errorf("Verify(%s) = %+v, %v, want the pushed digest, signed and attested", ref, v, err)
		}
	}
	apiPath := RelocatedImagePath("acme/bundle", src.Addr+"/shop/api")
	if want := "acme/bundle/images/" + strings.ReplaceAll(src.Addr, ":", "-") + "/shop/api"; apiPath != want {
		t.Fatalf("RelocatedImagePath = %s, want %s", apiPath, want)
	}

	// Registry to registry.
	res, err := Copy(ctx, c, mustRef(t, src.Addr+"/shop/bundle:1.4.0"), mustRef(t, dst.Addr+"/acme/bundle"), CopyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Digest != pushed.Digest || !slices.Equal(res.Tags, []string{"1.4.0"}) || res.Copied == 0 || res.Record == "" {
		t.Errorf("Copy = %+v", res)
	}
	if d, err := dst.Resolve(t, "acme/bundle", "1.4.0"); err != nil || d.Digest.String() != pushed.Digest {
		t.Errorf("destination tag 1.4.0 = %v, %v, want %s", d.Digest, err, pushed.Digest)
	}
	verifyAt(dst.Addr + "/acme/bundle:1.4.0")
	// The index with both platforms, its tag and its signature; the worker by digest.
	apiRepo := dst.Repository(t, apiPath)
	if d, err := dst.Resolve(t, apiPath, "1.4.0"); err != nil || d.Digest != index.Digest {
		t.Errorf("relocated api:1.4.0 = %v, %v, want %s", d.Digest, err, index.Digest)
	}
	var idx ocispec.Index
	json.Unmarshal(fetchBytes(t, apiRepo, index), &idx)
	for _, m := range idx.Manifests {
		if ok, err := apiRepo.Exists(ctx, m); !ok || err != nil {
			t.Errorf("platform %s of the index is missing at the destination: %v", m.Platform.Architecture, err)
		}
	}
	if refs, err := registry.Referrers(ctx, apiRepo, index, MediaTypeSigstoreBundle); err != nil || len(refs) != 1 || refs[0].Digest != imageSig.Digest {
		t.Errorf("the image's signature at the destination: %v, %v", refs, err)
	}
	if _, err := dst.Resolve(t, RelocatedImagePath("acme/bundle", src.Addr+"/shop/worker"), worker.Digest.String()); err != nil {
		t.Errorf("relocated worker: %v", err)
	}
	// The relocation record.
	var rec Relocation
	recManifest := fetchManifest(t, dst, "acme/bundle", res.Record)
	json.Unmarshal(fetchBytes(t, dst.Repository(t, "acme/bundle"), recManifest.Layers[0]), &rec)
	wantAPI := RelocatedImage{Name: "api", From: src.Addr + "/shop/api@" + index.Digest.String(), To: dst.Addr + "/" + apiPath + "@" + index.Digest.String()}
	if rec.Bundle != dst.Addr+"/acme/bundle@"+pushed.Digest || !slices.ContainsFunc(rec.Images, func(r RelocatedImage) bool {
		return r.Name == wantAPI.Name && r.From == wantAPI.From && r.To == wantAPI.To && !r.Partial
	}) || len(rec.Images) != 2 {
		t.Errorf("relocation record = %+v, want api %+v", rec, wantAPI)
	}

	// Again: nothing is sent.
	again, err := Copy(ctx, c, mustRef(t, src.Addr+"/shop/bundle:1.4.0"), mustRef(t, dst.Addr+"/acme/bundle"), CopyOptions{})
	if err != nil || again.Copied != 0 || again.Record != res.Record {
		t.Errorf("second Copy = %+v, %v, want 0 copied and the same record", again, err)
	}

	// Within one registry, blobs are mounted from the source repositories, not sent again.
	local, err := Copy(ctx, c, mustRef(t, src.Addr+"/shop/bundle:1.4.0"), mustRef(t, src.Addr+"/mirror/bundle"), CopyOptions{})
	if err != nil || local.Mounted == 0 || local.Bytes >= res.Bytes/2 {
		t.Errorf("Copy within one registry = %+v, %v; want blobs mounted, few bytes sent (a copy between registries sent %d)", local, err, res.Bytes)
	}
	verifyAt(src.Addr + "/mirror/bundle:1.4.0")

	// Cancelled after the first blob: no tag; run again, it completes.
	cctx, cancel := context.WithCancel(ctx)
	_, err = Copy(cctx, c, mustRef(t, src.Addr+"/shop/bundle:1.4.0"), mustRef(t, dst.Addr+"/resume/bundle"), CopyOptions{Concurrency: 1, OnProgress: func(ev ProgressEvent) {
		if ev.Action == ProgressUploaded {
			cancel()
		}
	}})
	if err == nil {
		t.Fatal("a cancelled copy succeeded")
	}
	if tags := dst.ListTags(t, "resume/bundle"); len(tags) != 0 {
		t.Errorf("a cancelled copy left tags %v", tags)
	}
	resumed, err := Copy(ctx, c, mustRef(t, src.Addr+"/shop/bundle:1.4.0"), mustRef(t, dst.Addr+"/resume/bundle"), CopyOptions{})
	if err != nil || resumed.Skipped == 0 {
		t.Fatalf("resumed Copy = %+v, %v, want it to skip what the first one sent", resumed, err)
	}
	verifyAt(dst.Addr + "/resume/bundle:1.4.0")

	// Registry to archive to registry.
	archive := filepath.Join(t.TempDir(), "shop.tar")
	if _, err := CopyToArchive(ctx, c, mustRef(t, src.Addr+"/shop/bundle:1.4.0"), archive, CopyOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(archive + ".partial"); !os.IsNotExist(err) {
		t.Errorf("the staged layout is left after a complete archive: %v", err)
	}
	if _, err := CopyToArchive(ctx, c, mustRef(t, src.Addr+"/shop/bundle:1.4.0"), archive, CopyOptions{}); !errors.Is(err, ErrOutputExists) {
		t.Errorf("CopyToArchive over an archive: %v, want ErrOutputExists", err)
	}
	fromArchive, err := CopyFromArchive(ctx, c, archive, mustRef(t, dst.Addr+"/airgap/bundle"), CopyOptions{})
	if err != nil || fromArchive.Digest != pushed.Digest || !slices.Equal(fromArchive.Tags, []string{"1.4.0"}) {
		t.Fatalf("CopyFromArchive = %+v, %v", fromArchive, err)
	}
	verifyAt(dst.Addr + "/airgap/bundle:1.4.0")
	if _, err := dst.Resolve(t, RelocatedImagePath("airgap/bundle", src.Addr+"/shop/api"), index.Digest.String()); err != nil {
		t.Errorf("image from the archive: %v", err)
	}
	airgapAPI := dst.Repository(t, RelocatedImagePath("airgap/bundle", src.Addr+"/shop/api"))
	if refs, err := registry.Referrers(ctx, airgapAPI, index, MediaTypeSigstoreBundle); err != nil || len(refs) != 1 || refs[0].Digest != imageSig.Digest {
		t.Errorf("the image's signature through the archive: %v, %v", refs, err)
	}
	if again, err := CopyFromArchive(ctx, c, archive, mustRef(t, dst.Addr+"/airgap/bundle"), CopyOptions{}); err != nil || again.Copied != 0 {
		t.Errorf("second CopyFromArchive = %+v, %v, want 0 copied", again, err)
	}

	// A tampered archive: one byte of the manifests layer changed.
	tampered := filepath.Join(t.TempDir(), "tampered.tar")
	tamperTar(t, archive, tampered, "blobs/sha256/"+strings.TrimPrefix(pushed.Layers[0].Digest, "sha256:"))
	_, err = CopyFromArchive(ctx, c, tampered, mustRef(t, dst.Addr+"/tampered/bundle"), CopyOptions{})
	if !errors.Is(err, ErrDigestMismatch) {
		t.Errorf("CopyFromArchive(tampered) error = %v, want ErrDigestMismatch", err)
	}
	if tags := dst.ListTags(t, "tampered/bundle"); len(tags) != 0 {
		t.Errorf("a failed copy left tags %v", tags)
	}
}

func fetchBytes(t *testing.T, rep content.Fetcher, desc ocispec.Descriptor) []byte {
	t.Helper()
	b, err := content.FetchAll(context.Background(), rep, desc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tamperTar copies the tar in to out with the first byte of the entry name flipped.
func tamperTar(t *testing.T, in, out, name string) {
	t.Helper()
	f, err := os.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var buf bytes.Buffer
	tr, tw := tar.NewReader(f), tar.NewWriter(&buf)
	found := false
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		if hdr.Name == name {
			data[0] ^= 0xff
			found = true
		}
		tw.WriteHeader(hdr)
		tw.Write(data)
	}
	tw.Close()
	if !found {
		t.Fatalf("no %s in %s", name, in)
	}
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestCopyBadInput: a destination that refuses the push and a source image that is gone each fail
// the copy with their own error, naming what to look at, and leave nothing tagged at the
// destination.
func TestCopyBadInput(t *testing.T) {
	src := testenv.StartRegistry(t, testenv.RegistryOptions{})
	locked := testenv.StartRegistry(t, testenv.RegistryOptions{Auth: true})
	dst := testenv.StartRegistry(t, testenv.RegistryOptions{})
	c := clientFor(t, nil, ClientOptions{})
	ctx := context.Background()
	src.PushImage(t, "shop/api", "1.0.0", "api")
	withImage := t.TempDir()
	writeTree(t, withImage, map[string]string{
		"ferry.yaml": "apiVersion: ferry.dev/v1\nkind: Bundle\nname: shop\nversion: 1.0.0\nimages:\n  api: " + src.Addr + "/shop/api:1.0.0\nmanifests: m\n",
		"m/cm.yaml":  "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n",
	})
	if _, err := Push(ctx, c, withImage, mustRef(t, src.Addr+"/shop/bundle:1"), PushOptions{PackOptions: PackOptions{Created: testCreated}}); err != nil {
		t.Fatal(err)
	}
	_, err := Copy(ctx, c, mustRef(t, src.Addr+"/shop/bundle:1"), mustRef(t, locked.Addr+"/acme/bundle"), CopyOptions{})
	if !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), locked.Addr+"/acme/bundle") {
		t.Errorf("Copy to a registry that refuses the push: %v, want ErrUnauthorized (the registry's, not the image's) naming the destination", err)
	}
	if tags := locked.ListTags(t, "acme/bundle"); len(tags) != 0 {
		t.Errorf("a refused copy left tags %v", tags)
	}

	gone := "sha256:" + strings.Repeat("0123456789abcdef", 4)
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"ferry.yaml": "apiVersion: ferry.dev/v1\nkind: Bundle\nname: shop\nversion: 1.0.0\nimages:\n  api: " + src.Addr + "/shop/api@" + gone + "\nmanifests: m\n",
		"m/cm.yaml":  "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n",
	})
	if _, err := Push(ctx, c, dir, mustRef(t, src.Addr+"/shop/bundle:gone"), PushOptions{PackOptions: PackOptions{Created: testCreated, Offline: true}}); err != nil {
		t.Fatal(err)
	}
	_, err = Copy(ctx, c, mustRef(t, src.Addr+"/shop/bundle:gone"), mustRef(t, dst.Addr+"/acme/bundle"), CopyOptions{})
	if !errors.Is(err, ErrImageNotFound) || !strings.Contains(err.Error(), "image api ("+src.Addr+"/shop/api@"+gone+")") {
		t.Errorf("Copy of a bundle whose image is gone: %v, want ErrImageNotFound naming the image", err)
	}
	if tags := dst.ListTags(t, "acme/bundle"); len(tags) != 0 {
		t.Errorf("a failed copy left tags %v", tags)
	}
}

// TestCopyPlatforms: --platform copies an index whole (its digest unchanged) with only the named
// platform's manifest, reports the copy as partial, and a later copy with the other platform adds
// its manifest next to the index already in place. A platform the index lacks is an error.
func TestCopyPlatforms(t *testing.T) {
	src := testenv.StartRegistry(t, testenv.RegistryOptions{})
	dst := testenv.StartRegistry(t, testenv.RegistryOptions{})
	c := clientFor(t, nil, ClientOptions{})
	ctx := context.Background()
	index := src.PushIndex(t, "shop/api", "1.4.0", "api")
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"ferry.yaml": "apiVersion: ferry.dev/v1\nkind: Bundle\nname: shop\nversion: 1.4.0\nimages:\n  api: " + src.Addr + "/shop/api:1.4.0\nmanifests: m\n",
		"m/cm.yaml":  "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n",
	})
	if _, err := Push(ctx, c, dir, mustRef(t, src.Addr+"/shop/bundle:1.4.0"), PushOptions{PackOptions: PackOptions{Created: testCreated}}); err != nil {
		t.Fatal(err)
	}
	var idx ocispec.Index
	json.Unmarshal(fetchBytes(t, src.Repository(t, "shop/api"), index), &idx)
	byArch := map[string]ocispec.Descriptor{}
	for _, m := range idx.Manifests {
		byArch[m.Platform.Architecture] = m
	}
	apiRepo := dst.Repository(t, RelocatedImagePath("acme/bundle", src.Addr+"/shop/api"))
	has := func(arch string) bool {
		ok, err := apiRepo.Exists(ctx, byArch[arch])
		return ok && err == nil
	}
	platform := func(s string) []ocispec.Platform {
		p, err := ParsePlatform(s)
		if err != nil {
			t.Fatal(err)
		}
		return []ocispec.Platform{p}
	}
	res, err := Copy(ctx, c, mustRef(t, src.Addr+"/shop/bundle:1.4.0"), mustRef(t, dst.Addr+"/acme/bundle"), CopyOptions{Platforms: platform("linux/arm64")})
	if err != nil || !res.Images[0].Partial || !slices.Equal(res.Images[0].Platforms, []string{"linux/arm64"}) {
		t.Fatalf("Copy(linux/arm64) = %+v, %v", res, err)
	}
	if ok, err := apiRepo.Exists(ctx, index); !ok || err != nil || !has("arm64") || has("amd64") {
		t.Errorf("after the arm64 copy: index %v %v, arm64 %v, amd64 %v; want the index and arm64 only", ok, err, has("arm64"), has("amd64"))
	}
	if _, err := Copy(ctx, c, mustRef(t, src.Addr+"/shop/bundle:1.4.0"), mustRef(t, dst.Addr+"/acme/bundle"), CopyOptions{Platforms: platform("linux/amd64")}); err != nil || !has("amd64") {
		t.Errorf("Copy(linux/amd64) afterwards: %v, amd64 %v", err, has("amd64"))
	}
	if _, err := Copy(ctx, c, mustRef(t, src.Addr+"/shop/bundle:1.4.0"), mustRef(t, dst.Addr+"/other/bundle"), CopyOptions{Platforms: platform("linux/s390x")}); !errors.Is(err, ErrImageNotFound) || !strings.Contains(err.Error(), "linux/amd64, linux/arm64") {
		t.Errorf("Copy(linux/s390x) error = %v, want ErrImageNotFound listing the index's platforms", err)
	}
	for _, bad := range []string{"linux", "linux/", "a/b/c/d"} {
		if _, err := ParsePlatform(bad); err == nil {
			t.Errorf("ParsePlatform(%q) accepted", bad)
		}
	}
}

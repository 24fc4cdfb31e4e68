package bundle

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferry-dev/terraform-provider-ferry/internal/archive"
	"github.com/ferry-dev/terraform-provider-ferry/internal/testenv"
)

// TestOrasInterop pulls a bundle pushed by ferry with the oras CLI, an independent client: it gets
// one file per layer named after the titles, byte-identical to the blobs, and the manifests layer
// holds exactly what `ferry bundle pull` extracts. The manifest oras fetches satisfies every
// consumer rule.
func TestOrasInterop(t *testing.T) {
	testenv.SkipShort(t, "the oras CLI and a registry")
	oras, err := testenv.Tool("oras")
	if err != nil {
		t.Fatal(err)
	}
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	dir := t.TempDir()
	writeTree(t, dir, releaseFiles())
	ctx := context.Background()
	c := clientFor(t, nil, ClientOptions{})
	res, err := Push(ctx, c, dir, mustRef(t, reg.Addr+"/shop/bundle:1.4.0"), PushOptions{PackOptions: PackOptions{Created: testCreated, Offline: true}})
	if err != nil {
		t.Fatal(err)
	}
	pinned := reg.Addr + "/shop/bundle@" + res.Digest
	orasCLI := cliRunner(t, oras, t.TempDir())
	run := func(args ...string) []byte { t.Helper(); return orasCLI("", args...) }

	var m ocispec.Manifest
	if err := json.Unmarshal(run("manifest", "fetch", "--plain-http", pinned), &m); err != nil {
		t.Fatal(err)
	}
	if err := checkConsumers(m); err != nil {
		t.Errorf("manifest fetched by oras breaks a consumer: %v", err)
	}

	orasDir := t.TempDir()
	run("pull", "--plain-http", "-o", orasDir, pinned)
	entries, _ := os.ReadDir(orasDir)
	if len(entries) != len(m.Layers) {
		t.Errorf("oras pull wrote %d files, want %d", len(entries), len(m.Layers))
	}
	for _, l := range m.Layers {
		got, err := os.ReadFile(filepath.Join(orasDir, l.Annotations[AnnotationTitle]))
		if err != nil {
			t.Errorf("oras pull: %v", err)
			continue
		}
		raw, err := fetchBlob(ctx, c, reg.Addr, l)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, raw) {
			t.Errorf("oras pull %s differs from the pushed blob", l.Annotations[AnnotationTitle])
		}
	}

	// The same files as ferry pull.
	ferryDir := t.TempDir()
	if _, err := Pull(ctx, c, mustRef(t, pinned), ferryDir, PullOptions{}); err != nil {
		t.Fatal(err)
	}
	extracted := filepath.Join(t.TempDir(), "m")
	f, err := os.Open(filepath.Join(orasDir, "manifests.tar.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := archive.ExtractTarGz(f, extracted, archive.Limits{}); err != nil {
		t.Fatal(err)
	}
	if a, b := treeDigest(t, extracted), treeDigest(t, filepath.Join(ferryDir, "manifests")); a != b {
		t.Errorf("oras and ferry extract different manifests:\n%s\n%s", a, b)
	}
}

func fetchBlob(ctx context.Context, c *Client, addr string, d ocispec.Descriptor) ([]byte, error) {
	repo, err := c.repository(addr, "shop/bundle")
	if err != nil {
		return nil, err
	}
	rc, err := repo.Fetch(ctx, d)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var b bytes.Buffer
	_, err = b.ReadFrom(rc)
	return b.Bytes(), err
}

// treeDigest lists a directory's regular files with mode and content.
func treeDigest(t testing.TB, root string) string {
	t.Helper()
	var b bytes.Buffer
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, p)
		if fi.Mode().IsRegular() {
			data, _ := os.ReadFile(p)
			b.WriteString(rel + " " + fi.Mode().String() + " " + string(data) + "\n")
		}
		return nil
	})
	return b.String()
}

// cliRunner returns a function that runs the command-line tool bin with args in dir (the test's
// working directory when empty), with HOME and DOCKER_CONFIG at home (no docker config or cache of
// the machine's user) and env, and returns its standard output; a failure fails the test with what
// the tool printed.
func cliRunner(t *testing.T, bin, home string, env ...string) func(dir string, args ...string) []byte {
	return func(dir string, args ...string) []byte {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Dir = dir
		cmd.Env = append(append(os.Environ(), "HOME="+home, "DOCKER_CONFIG="+home), env...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s %s: %v\n%s%s", filepath.Base(bin), strings.Join(args, " "), err, stdout.String(), stderr.String())
		}
		return stdout.Bytes()
	}
}

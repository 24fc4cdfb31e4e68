package testenv

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/errcode"
)

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// statusOf returns the HTTP status of an oras-go error response, or 0.
func statusOf(err error) int {
	var resp *errcode.ErrorResponse
	if errors.As(err, &resp) {
		return resp.StatusCode
	}
	return 0
}

func pushBlob(ctx context.Context, rep *remote.Repository, data []byte) error {
	return rep.Push(ctx, content.NewDescriptorFromBytes("application/octet-stream", data), bytes.NewReader(data))
}

func TestStartRegistry(t *testing.T) {
	tests := []struct {
		name        string
		auth        bool
		wantV2      int  // status of an anonymous GET /v2/
		wantRefused bool // anonymous and wrong-password pushes are refused with 401
	}{
		{name: "anonymous", auth: false, wantV2: http.StatusOK, wantRefused: false},
		{name: "htpasswd", auth: true, wantV2: http.StatusUnauthorized, wantRefused: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := StartRegistry(t, RegistryOptions{Auth: tt.auth})
			ctx := testContext(t)

			if got := r.Username != "" && r.Password != ""; got != tt.auth {
				t.Errorf("credentials set = %v, want %v (Username %q)", got, tt.auth, r.Username)
			}
			for _, addr := range []string{r.Addr, r.RawAddr} {
				if !strings.HasPrefix(addr, "127.0.0.1:") {
					t.Errorf("address = %q, want 127.0.0.1:PORT", addr)
				}
				resp, err := http.Get("http://" + addr + "/v2/")
				if err != nil {
					t.Fatalf("GET http://%s/v2/: %v", addr, err)
				}
				resp.Body.Close()
				if resp.StatusCode != tt.wantV2 {
					t.Errorf("GET http://%s/v2/ = %d, want %d", addr, resp.StatusCode, tt.wantV2)
				}
			}

			blob := []byte("blob for " + tt.name)
			for _, c := range []struct {
				who  string
				cred auth.Credential
			}{
				{"anonymous", auth.EmptyCredential},
				{"wrong password", auth.Credential{Username: "ferry", Password: "wrong"}},
			} {
				rep := NewRepository(t, r.Addr, "ferry/refused", c.cred, &http.Client{})
				err := pushBlob(ctx, rep, blob)
				log := r.RequestLog()
				last := log[len(log)-1]
				// Without credentials oras-go gives up on the 401 challenge
				// itself (auth.ErrBasicCredentialNotFound); with wrong ones it
				// returns the registry's 401 response.
				refused := (errors.Is(err, auth.ErrBasicCredentialNotFound) || statusOf(err) == http.StatusUnauthorized) &&
					strings.HasSuffix(last, "-> 401")
				if refused != tt.wantRefused {
					t.Errorf("%s push: error = %v, last request %q; refused with 401 = %v, want %v", c.who, err, last, refused, tt.wantRefused)
				}
				if !tt.wantRefused && err != nil {
					t.Errorf("%s push error = %v, want nil", c.who, err)
				}
			}
			good := NewRepository(t, r.Addr, "ferry/authed", r.Credential(), &http.Client{})
			if err := pushBlob(ctx, good, blob); err != nil {
				t.Errorf("authenticated push error = %v, want nil", err)
			}

			desc := r.PushImage(t, "ferry/app", "v1", "start")
			got, err := r.Resolve(t, "ferry/app", "v1")
			if err != nil || got.Digest != desc.Digest {
				t.Errorf("Resolve(ferry/app, v1) = %v, %v, want %v, nil", got.Digest, err, desc.Digest)
			}
		})
	}
}

// fetchJSON fetches desc from rep and decodes it into v.
func fetchJSON(t *testing.T, rep *remote.Repository, desc ocispec.Descriptor, v any) {
	t.Helper()
	rc, err := rep.Fetch(testContext(t), desc)
	if err != nil {
		t.Fatalf("fetch %s: %v", desc.Digest, err)
	}
	defer rc.Close()
	if err := json.NewDecoder(rc).Decode(v); err != nil {
		t.Fatalf("decode %s: %v", desc.Digest, err)
	}
}

// checkImage verifies the image desc points at in rep was built for
// platform from seed, down to the file in its layer.
func checkImage(t *testing.T, rep *remote.Repository, desc ocispec.Descriptor, seed, platform string) {
	t.Helper()
	var m ocispec.Manifest
	fetchJSON(t, rep, desc, &m)
	if m.MediaType != ocispec.MediaTypeImageManifest || m.Config.MediaType != ocispec.MediaTypeImageConfig || len(m.Layers) != 1 {
		t.Fatalf("manifest = %+v, want an OCI image manifest with an image config and one layer", m)
	}
	var cfg ocispec.Image
	fetchJSON(t, rep, m.Config, &cfg)
	if got := cfg.OS + "/" + cfg.Architecture; got != platform {
		t.Errorf("config platform = %q, want %q", got, platform)
	}
	if got := cfg.Config.Labels[SeedLabel]; got != seed {
		t.Errorf("config label %s = %q, want %q", SeedLabel, got, seed)
	}
	if m.Layers[0].MediaType != ocispec.MediaTypeImageLayerGzip {
		t.Errorf("layer media type = %q, want %q", m.Layers[0].MediaType, ocispec.MediaTypeImageLayerGzip)
	}
	rc, err := rep.Fetch(testContext(t), m.Layers[0])
	if err != nil {
		t.Fatalf("fetch layer: %v", err)
	}
	defer rc.Close()
	zr, err := gzip.NewReader(rc)
	if err != nil {
		t.Fatalf("gunzip layer: %v", err)
	}
	tr := tar.NewReader(zr)
	hdr, err := tr.Next()
	if err != nil {
		t.Fatalf("read layer tar: %v", err)
	}
	body, err := io.ReadAll(tr)
	if err != nil {
		t.Fatalf("read %s: %v", hdr.Name, err)
	}
	if hdr.Name != SeedFile || string(body) != SeedContent(seed, platform) {
		t.Errorf("layer file = %q: %q, want %q: %q", hdr.Name, body, SeedFile, SeedContent(seed, platform))
	}
	if len(cfg.RootFS.DiffIDs) != 1 {
		t.Errorf("config diff_ids = %v, want one", cfg.RootFS.DiffIDs)
	}
}

func TestPushImage(t *testing.T) {
	r := StartRegistry(t, RegistryOptions{Auth: true})
	tests := []struct {
		name, repo, tag, seed string
		sameAs                string // tag pushed earlier with the same seed: digests must match
		differsFrom           string // tag pushed earlier with another seed: digests must differ
	}{
		{name: "first", repo: "ferry/images", tag: "one", seed: "alpha"},
		{name: "same seed, same digest", repo: "ferry/images", tag: "one-again", seed: "alpha", sameAs: "one"},
		{name: "other seed, other digest", repo: "ferry/images", tag: "two", seed: "beta", differsFrom: "one"},
		{name: "nested repository", repo: "ferry/nested/deep/repo", tag: "latest", seed: "gamma"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			desc := r.PushImage(t, tt.repo, tt.tag, tt.seed)
			if desc.MediaType != ocispec.MediaTypeImageManifest {
				t.Errorf("PushImage().MediaType = %q, want %q", desc.MediaType, ocispec.MediaTypeImageManifest)
			}
			got, err := r.Resolve(t, tt.repo, tt.tag)
			if err != nil || got.Digest != desc.Digest || got.Size != desc.Size {
				t.Fatalf("Resolve(%s, %s) = %v/%d, %v, want %v/%d, nil", tt.repo, tt.tag, got.Digest, got.Size, err, desc.Digest, desc.Size)
			}
			if tt.sameAs != "" {
				other, _ := r.Resolve(t, tt.repo, tt.sameAs)
				if other.Digest != desc.Digest {
					t.Errorf("digest = %v, want %v (same seed as %s)", desc.Digest, other.Digest, tt.sameAs)
				}
			}
			if tt.differsFrom != "" {
				other, _ := r.Resolve(t, tt.repo, tt.differsFrom)
				if other.Digest == desc.Digest {
					t.Errorf("digest = %v, want it to differ from %s's", desc.Digest, tt.differsFrom)
				}
			}
			checkImage(t, r.Repository(t, tt.repo), desc, tt.seed, "linux/amd64")
		})
	}
}

func TestPushIndex(t *testing.T) {
	r := StartRegistry(t, RegistryOptions{})
	desc := r.PushIndex(t, "ferry/multi", "v2", "index-seed")
	if desc.MediaType != ocispec.MediaTypeImageIndex {
		t.Errorf("PushIndex().MediaType = %q, want %q", desc.MediaType, ocispec.MediaTypeImageIndex)
	}
	got, err := r.Resolve(t, "ferry/multi", "v2")
	if err != nil || got.Digest != desc.Digest || got.MediaType != ocispec.MediaTypeImageIndex {
		t.Fatalf("Resolve(ferry/multi, v2) = %v %v, %v, want %v %v, nil", got.MediaType, got.Digest, err, desc.MediaType, desc.Digest)
	}
	rep := r.Repository(t, "ferry/multi")
	var index ocispec.Index
	fetchJSON(t, rep, desc, &index)
	var platforms []string
	for _, m := range index.Manifests {
		if m.Platform == nil {
			t.Fatalf("index entry %v has no platform", m.Digest)
		}
		platform := m.Platform.OS + "/" + m.Platform.Architecture
		platforms = append(platforms, platform)
		if _, err := r.Resolve(t, "ferry/multi", m.Digest.String()); err != nil {
			t.Errorf("Resolve(ferry/multi, %s) error = %v, want nil", m.Digest, err)
		}
		checkImage(t, rep, m, "index-seed", platform)
	}
	if want := []string{"linux/amd64", "linux/arm64"}; !reflect.DeepEqual(platforms, want) {
		t.Errorf("index platforms = %v, want %v", platforms, want)
	}
	if got, want := r.ListTags(t, "ferry/multi"), []string{"v2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("ListTags(ferry/multi) = %v, want %v (platform images are untagged)", got, want)
	}
}

func TestListTagsAndResolve(t *testing.T) {
	r := StartRegistry(t, RegistryOptions{Auth: true})
	for _, tag := range []string{"c", "a", "b"} {
		r.PushImage(t, "ferry/tags", tag, "seed-"+tag)
	}
	a, err := r.Resolve(t, "ferry/tags", "a")
	if err != nil {
		t.Fatalf("Resolve(ferry/tags, a) error = %v", err)
	}

	t.Run("ListTags", func(t *testing.T) {
		tests := []struct {
			repo string
			want []string
		}{
			{repo: "ferry/tags", want: []string{"a", "b", "c"}},
			{repo: "ferry/missing", want: nil},
		}
		for _, tt := range tests {
			if got := r.ListTags(t, tt.repo); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ListTags(%q) = %v, want %v", tt.repo, got, tt.want)
			}
		}
	})

	t.Run("Resolve", func(t *testing.T) {
		tests := []struct {
			repo, ref    string
			wantNotFound bool
		}{
			{repo: "ferry/tags", ref: "a"},
			{repo: "ferry/tags", ref: a.Digest.String()},
			{repo: "ferry/tags", ref: "nope", wantNotFound: true},
			{repo: "ferry/missing", ref: "a", wantNotFound: true},
		}
		for _, tt := range tests {
			got, err := r.Resolve(t, tt.repo, tt.ref)
			if tt.wantNotFound {
				if !errors.Is(err, errdef.ErrNotFound) {
					t.Errorf("Resolve(%q, %q) error = %v, want one wrapping errdef.ErrNotFound", tt.repo, tt.ref, err)
				}
				continue
			}
			if err != nil || got.Digest != a.Digest {
				t.Errorf("Resolve(%q, %q) = %v, %v, want %v, nil", tt.repo, tt.ref, got.Digest, err, a.Digest)
			}
		}
	})
}

func TestRegistryAcceptsOCIArtifacts(t *testing.T) {
	r := StartRegistry(t, RegistryOptions{Auth: true})
	subject := r.PushImage(t, "ferry/bundle", "app", "subject")
	rep := r.Repository(t, "ferry/bundle")
	ctx := testContext(t)

	customConfig := []byte(`{"ferry":"bundle"}`)
	tests := []struct {
		name         string
		config       ocispec.Descriptor
		configData   []byte
		artifactType string
		subject      bool
	}{
		{
			name:       "custom config media type",
			config:     content.NewDescriptorFromBytes("application/vnd.ferry.bundle.config.v1+json", customConfig),
			configData: customConfig,
		},
		{
			name:         "empty config with artifactType and subject",
			config:       ocispec.DescriptorEmptyJSON,
			configData:   ocispec.DescriptorEmptyJSON.Data,
			artifactType: "application/vnd.ferry.bundle.v1",
			subject:      true,
		},
		{
			name:         "custom config with artifactType",
			config:       content.NewDescriptorFromBytes("application/vnd.ferry.bundle.config.v1+json", customConfig),
			configData:   customConfig,
			artifactType: "application/vnd.ferry.bundle.v1",
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			layerData := []byte("bundle payload " + tt.name)
			layer := content.NewDescriptorFromBytes("application/vnd.ferry.bundle.layer.v1.tar+gzip", layerData)
			for _, b := range []struct {
				desc ocispec.Descriptor
				data []byte
			}{{tt.config, tt.configData}, {layer, layerData}} {
				if err := rep.Push(ctx, b.desc, bytes.NewReader(b.data)); err != nil {
					t.Fatalf("push blob %s: %v", b.desc.MediaType, err)
				}
			}
			m := ocispec.Manifest{
				Versioned:    specs.Versioned{SchemaVersion: 2},
				MediaType:    ocispec.MediaTypeImageManifest,
				ArtifactType: tt.artifactType,
				Config:       tt.config,
				Layers:       []ocispec.Descriptor{layer},
			}
			if tt.subject {
				m.Subject = &subject
			}
			data, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			desc := content.NewDescriptorFromBytes(ocispec.MediaTypeImageManifest, data)
			tag := "artifact-" + strconv.Itoa(i)
			if err := rep.PushReference(ctx, desc, bytes.NewReader(data), tag); err != nil {
				t.Fatalf("push artifact manifest error = %v, want nil", err)
			}
			got, err := r.Resolve(t, "ferry/bundle", tag)
			if err != nil || got.Digest != desc.Digest {
				t.Errorf("Resolve(ferry/bundle, %s) = %v, %v, want %v, nil", tag, got.Digest, err, desc.Digest)
			}
			if tt.subject {
				var referrers []ocispec.Descriptor
				err := rep.Referrers(ctx, subject, tt.artifactType, func(page []ocispec.Descriptor) error {
					referrers = append(referrers, page...)
					return nil
				})
				if err != nil || len(referrers) != 1 || referrers[0].Digest != desc.Digest {
					t.Errorf("Referrers(subject) = %v, %v, want [%v], nil", referrers, err, desc.Digest)
				}
			}
		})
	}
}

func TestRegistryRequests(t *testing.T) {
	r := StartRegistry(t, RegistryOptions{})
	desc := r.PushImage(t, "ferry/count", "v1", "count")
	r.ListTags(t, "ferry/count")
	if got := r.Requests(); got != 0 {
		t.Errorf("Requests() after helper calls = %d, want 0 (helpers use RawAddr)", got)
	}
	rep := NewRepository(t, r.Addr, "ferry/count", r.Credential(), &http.Client{})
	got, err := rep.Resolve(testContext(t), "v1")
	if err != nil || got.Digest != desc.Digest {
		t.Fatalf("Resolve through Addr = %v, %v, want %v, nil", got.Digest, err, desc.Digest)
	}
	if got := r.Requests(); got != 1 {
		t.Errorf("Requests() = %d, want 1", got)
	}
	if got, want := r.RequestLog(), []string{"HEAD /v2/ferry/count/manifests/v1 -> 200"}; !reflect.DeepEqual(got, want) {
		t.Errorf("RequestLog() = %q, want %q", got, want)
	}
}

func TestRegistryStop(t *testing.T) {
	r := StartRegistry(t, RegistryOptions{})
	pid := r.PID()
	if err := r.Stop(); err != nil {
		t.Fatalf("Stop() error = %v", err)
	}
	if err := r.Stop(); err != nil {
		t.Errorf("second Stop() error = %v, want nil", err)
	}
	if st := procState(pid); st != "gone" {
		t.Errorf("registry pid %d state = %q after Stop, want gone", pid, st)
	}
	if resp, err := http.Get("http://" + r.RawAddr + "/v2/"); err == nil {
		resp.Body.Close()
		t.Errorf("GET RawAddr after Stop = %s, want connection refused", resp.Status)
	}
	resp, err := http.Get("http://" + r.Addr + "/v2/")
	if err != nil {
		t.Fatalf("GET Addr after Stop: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Errorf("GET Addr after Stop = %d, want %d", resp.StatusCode, http.StatusBadGateway)
	}
}

func TestRegistryProcessesAreReaped(t *testing.T) {
	var pids []int
	for _, opts := range []RegistryOptions{{}, {Auth: true}} {
		t.Run(fmt.Sprintf("auth=%v", opts.Auth), func(t *testing.T) {
			r := StartRegistry(t, opts)
			pids = append(pids, r.PID())
			if st := procState(r.PID()); st == "gone" || st == "Z" {
				t.Errorf("registry pid %d state = %q while the test runs, want running", r.PID(), st)
			}
		})
	}
	// The subtests' cleanups have run: their registries must be gone.
	for _, pid := range pids {
		if st := procState(pid); st != "gone" {
			t.Errorf("registry pid %d state = %q after its test, want gone", pid, st)
		}
		if members := groupMembers(pid); len(members) != 0 {
			t.Errorf("process group %d members = %v after its test, want none", pid, members)
		}
	}
	CheckNoLeaks(t)
}

const leakHelperEnv = "FERRY_TESTENV_LEAK_HELPER"

// TestLeakHelper runs only inside TestMainFailsOnLeakedProcess's child: it
// starts a tracked process and deliberately never stops it.
func TestLeakHelper(t *testing.T) {
	if os.Getenv(leakHelperEnv) != "1" {
		t.Skip("helper process for TestMainFailsOnLeakedProcess")
	}
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatalf("sleep not found: %v", err)
	}
	p, err := startProc("deliberate leak", sleep, []string{"300"}, os.Environ(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("leaked pid %d\n", p.pid)
}

func TestMainFailsOnLeakedProcess(t *testing.T) {
	if _, err := exec.LookPath("sleep"); err != nil {
		t.Skipf("sleep not found: %v", err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestLeakHelper$", "-test.v")
	cmd.Env = append(os.Environ(), leakHelperEnv+"=1")
	out, err := cmd.CombinedOutput()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 1 {
		t.Fatalf("test binary with a leaked process: err = %v, want exit status 1\n%s", err, out)
	}
	for _, want := range []string{"--- PASS: TestLeakHelper", "still alive after the tests", "deliberate leak"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output = %q, want it to contain %q", out, want)
		}
	}
	m := regexp.MustCompile(`leaked pid (\d+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("output = %q, want a leaked pid line", out)
	}
	pid, _ := strconv.Atoi(string(m[1]))
	deadline := time.Now().Add(5 * time.Second)
	for procState(pid) != "gone" && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if st := procState(pid); st != "gone" {
		t.Errorf("leaked pid %d state = %q after Main, want gone", pid, st)
	}
}

func TestStartRegistryRetriesTakenPort(t *testing.T) {
	tests := []struct {
		name   string
		squat  func(t *testing.T) string // occupies an address and returns it
		wantIn string                    // in the registry log of the failed attempt
	}{
		{
			name: "port bound by a plain listener",
			squat: func(t *testing.T) string {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { ln.Close() })
				return ln.Addr().String()
			},
			wantIn: "address already in use",
		},
		{
			name: "port answered by another HTTP server",
			squat: func(t *testing.T) string {
				srv := httptest.NewServer(http.NotFoundHandler())
				t.Cleanup(srv.Close)
				return srv.Listener.Addr().String()
			},
			wantIn: "attempt 2",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			taken := tt.squat(t)
			calls := 0
			pickAddr = func() (string, error) {
				calls++
				if calls == 1 {
					return taken, nil
				}
				return freeLoopbackAddr()
			}
			t.Cleanup(func() { pickAddr = freeLoopbackAddr })
			r := StartRegistry(t, RegistryOptions{})
			if r.RawAddr == taken || calls != 2 {
				t.Errorf("StartRegistry() RawAddr = %s after %d picks, want a fresh address after 2 picks (%s was taken)", r.RawAddr, calls, taken)
			}
			if log := r.LogText(); !strings.Contains(log, tt.wantIn) {
				t.Errorf("registry log = %q, want it to mention %q", log, tt.wantIn)
			}
			r.PushImage(t, "ferry/retry", "v1", "retry")
			if got := r.ListTags(t, "ferry/retry"); !reflect.DeepEqual(got, []string{"v1"}) {
				t.Errorf("ListTags() = %v, want [v1]", got)
			}
		})
	}
}

package bundle

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/ferry-dev/terraform-provider-ferry/internal/testenv"
)

// benchRelease writes a deterministic release of about 256 MiB: one 240 MiB plugin of
// incompressible bytes, 2000 small manifests (16 MiB) and a small Terraform module.
func benchRelease(b *testing.B) string {
	b.Helper()
	dir := b.TempDir()
	rng := rand.New(rand.NewChaCha8([32]byte{'f', 'e', 'r', 'r', 'y'}))
	writeTree(b, dir, map[string]string{
		"ferry.yaml":        "apiVersion: ferry.dev/v1\nkind: Bundle\nname: bench\nversion: 1.0.0\nmanifests: manifests\nterraform: terraform\nplugins: plugins\n",
		"terraform/main.tf": "output \"x\" { value = 1 }\n",
	})
	if err := os.MkdirAll(filepath.Join(dir, "manifests"), 0o755); err != nil {
		b.Fatal(err)
	}
	for i := 0; i < 2000; i++ {
		var m bytes.Buffer
		fmt.Fprintf(&m, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-%04d\ndata:\n", i)
		for m.Len() < 8<<10 {
			fmt.Fprintf(&m, "  key-%08x: value-%016x\n", rng.Uint32(), rng.Uint64())
		}
		if err := os.WriteFile(filepath.Join(dir, "manifests", fmt.Sprintf("cm-%04d.yaml", i)), m.Bytes(), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "plugins"), 0o755); err != nil {
		b.Fatal(err)
	}
	f, err := os.Create(filepath.Join(dir, "plugins", "engine.bin"))
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	for i := 0; i < 240; i++ {
		for j := 0; j < len(buf); j += 8 {
			v := rng.Uint64()
			for k := 0; k < 8; k++ {
				buf[j+k] = byte(v >> (8 * k))
			}
		}
		if _, err := f.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return dir
}

// BenchmarkBundle times, in one run against the same local registry, `ferry bundle push` against
// `oras push` of the same three directories, `ferry bundle pull` against `oras pull`, and a re-push
// of the unchanged bundle, and reports the ratios and the blobs the re-push uploaded.
// Targets: push ≤ 0.9× oras, pull ≤ 1.0× oras, re-push uploads 0 blobs. See docs/performance.md.
func BenchmarkBundle(b *testing.B) {
	oras, bin := benchBinaries(b)
	dir := benchRelease(b)
	reg := testenv.StartRegistry(b, testenv.RegistryOptions{})
	home := b.TempDir()
	env := append(os.Environ(), "HOME="+home, "DOCKER_CONFIG="+home, "SOURCE_DATE_EPOCH=1764115200")
	run := func(wd, name string, args ...string) (time.Duration, []byte) {
		b.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir, cmd.Env = wd, env
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		start := time.Now()
		out, err := cmd.Output()
		d := time.Since(start)
		if err != nil {
			b.Fatalf("%s %v: %v\n%s", filepath.Base(name), args, err, stderr.String())
		}
		return d, out
	}

	var ferryPush, orasPush, ferryPull, orasPull, orasPullFerry, repush time.Duration
	repushUploads := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		fRef := fmt.Sprintf("%s/bench/ferry-%d:1.0.0", reg.Addr, i)
		oRef := fmt.Sprintf("%s/bench/oras-%d:1.0.0", reg.Addr, i)
		runtime.GC()
		d, _ := run(dir, bin, "bundle", "push", ".", fRef, "--plain-http", "--format", "json")
		ferryPush += d
		d, _ = run(dir, oras, "push", "--plain-http", "--no-tty", oRef, "manifests/", "terraform/", "plugins/")
		orasPush += d

		d, _ = run(dir, bin, "bundle", "pull", fRef, "-o", filepath.Join(b.TempDir(), "f"), "--plain-http", "--format", "json")
		ferryPull += d
		d, _ = run(dir, oras, "pull", "--plain-http", "--no-tty", "-o", filepath.Join(b.TempDir(), "o"), oRef)
		orasPull += d
		d, _ = run(dir, oras, "pull", "--plain-http", "--no-tty", "-o", filepath.Join(b.TempDir(), "of"), fRef)
		orasPullFerry += d

		d, out := run(dir, bin, "bundle", "push", ".", fRef, "--plain-http", "--format", "json")
		repush += d
		var res PushResult
		if err := json.Unmarshal(out, &res); err != nil {
			b.Fatal(err)
		}
		repushUploads += res.Uploaded
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(ferryPush.Seconds()/n, "ferry-push-s")
	b.ReportMetric(orasPush.Seconds()/n, "oras-push-s")
	b.ReportMetric(ferryPush.Seconds()/orasPush.Seconds(), "push-ratio")
	b.ReportMetric(ferryPull.Seconds()/n, "ferry-pull-s")
	b.ReportMetric(orasPull.Seconds()/n, "oras-pull-s")
	b.ReportMetric(ferryPull.Seconds()/orasPull.Seconds(), "pull-ratio")
	b.ReportMetric(orasPullFerry.Seconds()/n, "oras-pull-bundle-s")
	b.ReportMetric(repush.Seconds()/n, "repush-s")
	b.ReportMetric(float64(repushUploads)/n, "repush-blobs")
	b.Logf("push %.2fs vs oras %.2fs (ratio %.2f, target ≤ 0.90); pull %.2fs vs oras %.2fs (ratio %.2f, target ≤ 1.00); oras pull of the bundle (no extraction) %.2fs; re-push %.2fs uploading %d blobs (target 0)",
		ferryPush.Seconds()/n, orasPush.Seconds()/n, ferryPush.Seconds()/orasPush.Seconds(),
		ferryPull.Seconds()/n, orasPull.Seconds()/n, ferryPull.Seconds()/orasPull.Seconds(),
		orasPullFerry.Seconds()/n, repush.Seconds()/n, repushUploads)
}

// BenchmarkPullChecks measures what the hostile-input checks of a pull cost against the pull itself, in
// one run on the ~256 MiB release from an OCI layout (no network): the config check ([CheckConfig]) and
// the output directory's checks and staging (checkFree, stage, commit, close) are timed on their own, and
// reported as a percentage of the whole Pull. The ratio limit adds two comparisons per read of the
// extraction stream and is inside the Pull time. Target: under 2 %.
func BenchmarkPullChecks(b *testing.B) {
	dir := benchRelease(b)
	layout := filepath.Join(b.TempDir(), "layout")
	c, err := NewClient(ClientOptions{Credentials: StaticCredentials(nil, nil)})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	ref, err := ParseReference("oci-layout:" + layout + ":1.0.0")
	if err != nil {
		b.Fatal(err)
	}
	if _, err := Push(ctx, c, dir, ref, PushOptions{PackOptions: PackOptions{Created: testCreated, Offline: true}}); err != nil {
		b.Fatal(err)
	}
	info, err := Inspect(ctx, c, ref)
	if err != nil {
		b.Fatal(err)
	}
	cfg := Config{Name: info.Name, Version: info.Version, Images: info.Images, Layers: info.Layers}
	roles := []string{RoleManifests, RoleTerraform, RolePlugins}
	var pull, checks time.Duration
	for b.Loop() {
		out := filepath.Join(b.TempDir(), "out")
		runtime.GC()
		start := time.Now()
		if _, err := Pull(ctx, c, ref, out, PullOptions{}); err != nil {
			b.Fatal(err)
		}
		pull += time.Since(start)

		out = filepath.Join(b.TempDir(), "checks")
		start = time.Now()
		if err := CheckConfig(info.manifest, cfg); err != nil {
			b.Fatal(err)
		}
		o, err := openOutput(out)
		if err != nil {
			b.Fatal(err)
		}
		if err := o.checkFree(roles); err != nil {
			b.Fatal(err)
		}
		if err := o.stage(); err != nil {
			b.Fatal(err)
		}
		for _, r := range roles {
			if err := o.staging.Mkdir(r, 0o755); err != nil {
				b.Fatal(err)
			}
		}
		if err := o.commit(roles, []byte("{}")); err != nil {
			b.Fatal(err)
		}
		o.close()
		checks += time.Since(start)
	}
	b.ReportMetric(pull.Seconds()/float64(b.N), "pull-s")
	b.ReportMetric(checks.Seconds()/float64(b.N)*1e6, "checks-µs")
	b.ReportMetric(100*checks.Seconds()/pull.Seconds(), "checks-%")
}

// BenchmarkSignedPush measures what signing costs a push, in one run against the same local
// registry on the ~256 MiB release: a plain push, against a push with a signing key (the SBOM, which
// hashes every plugin file, the provenance and three signed referrers) followed by the verification
// of the pushed digest with its attestations required, each to a fresh repository. It also counts
// the registry requests of verifying that digest again in the same process. Targets: signed push
// plus verification ≤ 1.10× the plain push; 0 requests for the second verification. It fails
// above them. See docs/performance.md.
func BenchmarkSignedPush(b *testing.B) {
	dir := benchRelease(b)
	reg := testenv.StartRegistry(b, testenv.RegistryOptions{})
	c := clientFor(b, nil, ClientOptions{})
	ctx := context.Background()
	priv, pub, err := GenerateKeyPair([]byte("bench"))
	if err != nil {
		b.Fatal(err)
	}
	key, err := LoadSigningKey(priv, []byte("bench"))
	if err != nil {
		b.Fatal(err)
	}
	trusted, err := ParseTrustedKey("bench", pub)
	if err != nil {
		b.Fatal(err)
	}
	opts := PushOptions{PackOptions: PackOptions{Created: testCreated}}
	var plain, signed time.Duration
	reverify := 0
	pushPlain := func(i int) {
		runtime.GC()
		start := time.Now()
		if _, err := Push(ctx, c, dir, mustRef(b, fmt.Sprintf("%s/bench/plain-%d:1", reg.Addr, i)), opts); err != nil {
			b.Fatal(err)
		}
		plain += time.Since(start)
	}
	pushSigned := func(i int) {
		runtime.GC()
		start := time.Now()
		signedOpts := opts
		signedOpts.SignKey = key
		res, err := Push(ctx, c, dir, mustRef(b, fmt.Sprintf("%s/bench/signed-%d:1", reg.Addr, i)), signedOpts)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Verify(ctx, c, mustRef(b, res.PinnedReference), []TrustedKey{trusted}, PredicateCycloneDX, PredicateSLSAProvenance); err != nil {
			b.Fatal(err)
		}
		signed += time.Since(start)
		before := reg.Requests()
		if _, err := Verify(ctx, c, mustRef(b, res.PinnedReference), []TrustedKey{trusted}, PredicateCycloneDX, PredicateSLSAProvenance); err != nil {
			b.Fatal(err)
		}
		reverify += reg.Requests() - before
	}
	pushPlain(-1) // warm-up: the page cache holds the release and the registry's first writes are done
	plain = 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// Alternating which goes first, so that neither always follows the other's writes.
		if i%2 == 0 {
			pushPlain(i)
			pushSigned(i)
		} else {
			pushSigned(i)
			pushPlain(i)
		}
	}
	b.StopTimer()
	n := float64(b.N)
	ratio := signed.Seconds() / plain.Seconds()
	b.ReportMetric(plain.Seconds()/n, "push-s")
	b.ReportMetric(signed.Seconds()/n, "signed-push-verify-s")
	b.ReportMetric(ratio, "sign-ratio")
	b.ReportMetric(float64(reverify)/n, "reverify-requests")
	b.Logf("push %.2fs; signed push + verify %.2fs (ratio %.3f, target ≤ 1.10); verifying again: %d requests (target 0)",
		plain.Seconds()/n, signed.Seconds()/n, ratio, reverify)
	if ratio > 1.10 || reverify != 0 {
		b.Fatalf("signing costs %.3f× a push (target ≤ 1.10), verifying again made %d requests (target 0)", ratio, reverify)
	}
}

// BenchmarkCopy times, in one run between the same two local registries, `ferry bundle copy` of
// the ~256 MiB bundle (signed: a signature and two attestations travel with it) against
// `oras cp -r` of the same bundle and referrers, each into a fresh repository, alternating which
// goes first. Goal: ferry's time ≤ oras's (ratio ≤ 1.0); it fails above 1.10. See
// docs/performance.md.
func BenchmarkCopy(b *testing.B) {
	oras, bin := benchBinaries(b)
	src := testenv.StartRegistry(b, testenv.RegistryOptions{})
	dst := testenv.StartRegistry(b, testenv.RegistryOptions{})
	priv, _, err := GenerateKeyPair([]byte("bench"))
	if err != nil {
		b.Fatal(err)
	}
	key, err := LoadSigningKey(priv, []byte("bench"))
	if err != nil {
		b.Fatal(err)
	}
	ref := src.Addr + "/bench/bundle:1"
	if _, err := Push(context.Background(), clientFor(b, nil, ClientOptions{}), benchRelease(b), mustRef(b, ref), PushOptions{PackOptions: PackOptions{Created: testCreated}, SignKey: key}); err != nil {
		b.Fatal(err)
	}
	home := b.TempDir()
	env := append(os.Environ(), "HOME="+home, "DOCKER_CONFIG="+home)
	run := func(name string, args ...string) time.Duration {
		b.Helper()
		cmd := exec.Command(name, args...)
		cmd.Env = env
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		runtime.GC()
		start := time.Now()
		if err := cmd.Run(); err != nil {
			b.Fatalf("%s %v: %v\n%s", filepath.Base(name), args, err, stderr.String())
		}
		return time.Since(start)
	}
	var ferryCopy, orasCopy time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ferryArgs := []string{"bundle", "copy", ref, fmt.Sprintf("%s/bench/ferry-%d", dst.Addr, i), "--plain-http", "--format", "json"}
		orasArgs := []string{"cp", "-r", "--from-plain-http", "--to-plain-http", "--no-tty", ref, fmt.Sprintf("%s/bench/oras-%d:1", dst.Addr, i)}
		if i%2 == 0 {
			ferryCopy += run(bin, ferryArgs...)
			orasCopy += run(oras, orasArgs...)
		} else {
			orasCopy += run(oras, orasArgs...)
			ferryCopy += run(bin, ferryArgs...)
		}
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(ferryCopy.Seconds()/n, "ferry-copy-s")
	b.ReportMetric(orasCopy.Seconds()/n, "oras-cp-s")
	b.ReportMetric(ferryCopy.Seconds()/orasCopy.Seconds(), "copy-ratio")
	ratio := ferryCopy.Seconds() / orasCopy.Seconds()
	b.Logf("ferry bundle copy %.2fs vs oras cp -r %.2fs (ratio %.2f, goal ≤ 1.00)", ferryCopy.Seconds()/n, orasCopy.Seconds()/n, ratio)
	if ratio > 1.10 {
		b.Fatalf("ferry bundle copy takes %.2f× oras cp -r (goal ≤ 1.00; this fails above 1.10, beyond the noise of a loaded machine)", ratio)
	}
}

// benchBinaries returns the pinned oras CLI and a ferry built from this tree.
func benchBinaries(b *testing.B) (oras, ferry string) {
	b.Helper()
	oras, err := testenv.Tool("oras")
	if err != nil {
		b.Fatal(err)
	}
	ferry = filepath.Join(b.TempDir(), "ferry")
	if out, err := exec.Command("go", "build", "-o", ferry, "../cmd/ferry").CombinedOutput(); err != nil {
		b.Fatalf("build ferry: %v\n%s", err, out)
	}
	return oras, ferry
}

package main

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-dev/terraform-provider-ferry/internal/testenv"
)

// TestReleaseNetworkMirror builds a snapshot release for the host platform with goreleaser and the
// repository's .goreleaser.yaml (signed with a throwaway GPG key), checks its files, serves the
// provider zip over HTTPS through Terraform's provider network mirror protocol and installs it with
// the real `terraform init`: the lock file records the h1: hash of exactly the zip's files (OpenTofu
// also the zip's zh: hash), and a zip with one byte changed (the mirror's hashes unchanged) makes
// init fail. OpenTofu, when its binary is in
// the tool cache, installs from the same mirror. The CLI archive's ferry reports the version, also
// in its registry User-Agent.
func TestReleaseNetworkMirror(t *testing.T) {
	testenv.SkipShort(t, "goreleaser, gpg and Terraform")
	tf := os.Getenv("TF_ACC_TERRAFORM_PATH")
	if tf == "" {
		t.Fatal("TF_ACC_TERRAFORM_PATH is not set; run through make test (tests never download Terraform)")
	}
	goreleaser, err := testenv.Tool("goreleaser")
	if err != nil {
		t.Fatal(err)
	}
	dist, meta := buildSnapshot(t, goreleaser)
	version := meta.Version
	platform := runtime.GOOS + "_" + runtime.GOARCH
	zipName := "terraform-provider-ferry_" + version + "_" + platform + ".zip"
	zipData, err := os.ReadFile(filepath.Join(dist, zipName))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(zipData)
	zh := "zh:" + hex.EncodeToString(sum[:])
	h1 := packageHashV1(t, zipData)

	t.Run("files", func(t *testing.T) {
		sums, err := os.ReadFile(filepath.Join(dist, "terraform-provider-ferry_"+version+"_SHA256SUMS"))
		if err != nil {
			t.Fatal(err)
		}
		if want := hex.EncodeToString(sum[:]) + "  " + zipName + "\n"; !strings.Contains(string(sums), want) {
			t.Errorf("SHA256SUMS lacks %q:\n%s", want, sums)
		}
		manifest, err := os.ReadFile("../../terraform-registry-manifest.json")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(manifest), `"protocol_versions": ["6.0"]`) {
			t.Errorf("terraform-registry-manifest.json does not declare protocol 6.0:\n%s", manifest)
		}
		msum := sha256.Sum256(manifest)
		if want := hex.EncodeToString(msum[:]) + "  terraform-provider-ferry_" + version + "_manifest.json\n"; !strings.Contains(string(sums), want) {
			t.Errorf("SHA256SUMS lacks the registry manifest %q:\n%s", want, sums)
		}
		zr, err := zip.NewReader(bytes.NewReader(zipData), int64(len(zipData)))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, f := range zr.File {
			names = append(names, f.Name)
		}
		bin := "terraform-provider-ferry_v" + version + exe()
		if !strings.Contains(" "+strings.Join(names, " ")+" ", " "+bin+" ") {
			t.Errorf("%s holds %v, want %s", zipName, names, bin)
		}
	})

	t.Run("ferry version", func(t *testing.T) {
		ferry := extractFerry(t, filepath.Join(dist, "ferry_"+version+"_"+platform+".tar.gz"))
		out, err := exec.Command(ferry, "version", "--format", "json").Output()
		if err != nil {
			t.Fatalf("ferry version: %v", err)
		}
		var v struct{ Version, Commit string }
		// The commit is "none" in a clone without a remote: goreleaser then reads no Git state.
		if err := json.Unmarshal(out, &v); err != nil || v.Version != version || v.Commit != meta.Commit {
			t.Errorf("ferry version --format json = %s (%v), want version %s and commit %s", out, err, version, meta.Commit)
		}
		// The registry client's User-Agent carries the version.
		var agent atomic.Value
		reg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			agent.Store(r.UserAgent())
			http.NotFound(w, r)
		}))
		defer reg.Close()
		host := strings.TrimPrefix(reg.URL, "http://")
		cmd := exec.Command(ferry, "bundle", "inspect", host+"/shop/bundle:1", "--plain-http", "--retries", "1")
		cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+t.TempDir())
		if out, err := cmd.CombinedOutput(); err == nil {
			t.Errorf("ferry bundle inspect against a registry that knows nothing succeeded:\n%s", out)
		}
		if got, want := agent.Load(), "ferry/"+version; got != want {
			t.Errorf("registry saw User-Agent %q, want %q", got, want)
		}
	})

	mirror := startMirror(t, map[string]string{platform: zipName}, version, zh, zipData)
	for _, tool := range []struct{ name, source string }{
		{"terraform", "ferry-dev/ferry"},
		// OpenTofu's default registry is registry.opentofu.org; the mirror serves any hostname.
		{"tofu", "ferry-dev/ferry"},
	} {
		t.Run(tool.name, func(t *testing.T) {
			bin := tf
			if tool.name == "tofu" {
				bin = cachedTool(t, "tofu")
			}
			install := func(t *testing.T) (string, string, error) {
				work := t.TempDir()
				writeTestFile(t, filepath.Join(work, "main.tf"), fmt.Sprintf(
					"terraform {\n  required_providers {\n    ferry = {\n      source  = %q\n      version = %q\n    }\n  }\n}\n", tool.source, "= "+version))
				out, err := mirror.run(t, bin, work, "init", "-input=false", "-no-color")
				return work, out, err
			}
			t.Run("install", func(t *testing.T) {
				work, out, err := install(t)
				if err != nil {
					t.Fatalf("%s init from the network mirror: %v\n%s", tool.name, err, out)
				}
				lock, err := os.ReadFile(filepath.Join(work, ".terraform.lock.hcl"))
				if err != nil {
					t.Fatal(err)
				}
				// h1: is the hash of the installed package's files: exactly the served zip's. Terraform
				// records a mirror's zh: hashes only for a package signed by the registry it came
				// from, which a network mirror cannot vouch for; OpenTofu records them.
				wants := []string{`version     = "` + version + `"`, `"` + h1 + `"`}
				if tool.name == "tofu" {
					wants = append(wants, `"`+zh+`"`)
				}
				for _, want := range wants {
					if !strings.Contains(string(lock), want) {
						t.Errorf(".terraform.lock.hcl lacks %s:\n%s", want, lock)
					}
				}
				// The installed binary runs on this platform and serves the schema.
				out, err = mirror.run(t, bin, work, "providers", "schema", "-json")
				if err != nil || !strings.Contains(out, `"ferry_application"`) {
					t.Errorf("%s providers schema -json: %v\n%.2000s", tool.name, err, out)
				}
			})
			t.Run("tampered zip", func(t *testing.T) {
				mirror.tampered.Store(true)
				defer mirror.tampered.Store(false)
				work, out, err := install(t)
				if err == nil {
					t.Fatalf("%s init installed a tampered zip:\n%s", tool.name, out)
				}
				if text := strings.Join(strings.Fields(out), " "); !strings.Contains(text, "doesn't match the expected checksum") || !strings.Contains(text, zh) {
					t.Errorf("%s init failed without naming the checksum %s:\n%s", tool.name, zh, out)
				}
				if _, err := os.Stat(filepath.Join(work, ".terraform.lock.hcl")); err == nil {
					t.Errorf("%s init wrote a lock file for a tampered zip", tool.name)
				}
				t.Logf("%s init refused the tampered zip:\n%s", tool.name, out)
			})
		})
	}
}

// buildSnapshot runs `goreleaser release --snapshot` with the repository's configuration for the
// host platform only, into a temporary dist directory, and returns it with the release's metadata.
func buildSnapshot(t *testing.T, goreleaser string) (dist string, meta releaseMetadata) {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("git", "-C", root, "rev-parse", "HEAD").CombinedOutput(); err != nil {
		t.Fatalf("goreleaser needs the repository's Git history: %v\n%s", err, out)
	}
	gnupg, fingerprint := throwawayGPGKey(t)
	config, err := os.ReadFile(filepath.Join(root, ".goreleaser.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dist = filepath.Join(t.TempDir(), "dist")
	// Only the host platform, and into the temporary dist: the rest is the repository's file.
	cfg := filepath.Join(t.TempDir(), "goreleaser.yaml")
	text := strings.ReplaceAll(string(config), "goos: &goos [linux, darwin, windows]", "goos: &goos ["+runtime.GOOS+"]")
	text = strings.ReplaceAll(text, "goarch: &goarch [amd64, arm64]", "goarch: &goarch ["+runtime.GOARCH+"]")
	if text == string(config) {
		t.Fatal(".goreleaser.yaml has no goos/goarch anchors to restrict to the host platform")
	}
	writeTestFile(t, cfg, text+"\ndist: "+dist+"\n")
	start := time.Now()
	cmd := exec.Command(goreleaser, "release", "--snapshot", "--clean", "--config", cfg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GNUPGHOME="+gnupg, "GPG_FINGERPRINT="+fingerprint)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("goreleaser release --snapshot: %v\n%s", err, out)
	}
	t.Logf("goreleaser release --snapshot (%s) took %s", runtime.GOOS+"/"+runtime.GOARCH, time.Since(start).Round(time.Second))
	b, err := os.ReadFile(filepath.Join(dist, "metadata.json"))
	if err == nil {
		err = json.Unmarshal(b, &meta)
	}
	if err != nil || !strings.Contains(meta.Version, "-SNAPSHOT-") {
		t.Fatalf("dist/metadata.json: version %q, %v", meta.Version, err)
	}
	// The signature verifies against the throwaway key.
	sums := filepath.Join(dist, "terraform-provider-ferry_"+meta.Version+"_SHA256SUMS")
	verify := exec.Command("gpg", "--batch", "--verify", sums+".sig", sums)
	verify.Env = append(os.Environ(), "GNUPGHOME="+gnupg)
	if out, err := verify.CombinedOutput(); err != nil {
		t.Errorf("gpg --verify SHA256SUMS.sig: %v\n%s", err, out)
	}
	return dist, meta
}

// releaseMetadata is the part of goreleaser's dist/metadata.json the test reads.
type releaseMetadata struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
}

// packageHashV1 is Terraform's h1: hash of a provider zip: the Go module dirhash ("Hash1") of the
// files it holds.
func packageHashV1(t *testing.T, zipData []byte) string {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(zipData), int64(len(zipData)))
	if err != nil {
		t.Fatal(err)
	}
	files := slices.Clone(zr.File)
	slices.SortFunc(files, func(a, b *zip.File) int { return strings.Compare(a.Name, b.Name) })
	summary := sha256.New()
	for _, f := range files {
		r, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		_, err = io.Copy(h, r)
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(summary, "%x  %s\n", h.Sum(nil), f.Name)
	}
	return "h1:" + base64.StdEncoding.EncodeToString(summary.Sum(nil))
}

// throwawayGPGKey creates a signing key in a temporary GNUPGHOME and returns the directory and the
// key's fingerprint; the gpg-agent it starts is stopped at cleanup.
func throwawayGPGKey(t *testing.T) (home, fingerprint string) {
	t.Helper()
	if _, err := exec.LookPath("gpg"); err != nil {
		t.Fatal("gpg is not on PATH; it signs the release's SHA256SUMS (Debian: apt-get install gpg; .ci/run installs it)")
	}
	// A short path: gpg-agent's socket may live in GNUPGHOME, and socket paths are limited.
	home, err := os.MkdirTemp("", "gpg")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(home, 0o700); err != nil {
		t.Fatal(err)
	}
	gpg := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("gpg", append([]string{"--batch"}, args...)...)
		cmd.Env = append(os.Environ(), "GNUPGHOME="+home)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("gpg %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	t.Cleanup(func() {
		kill := exec.Command("gpgconf", "--kill", "all")
		kill.Env = append(os.Environ(), "GNUPGHOME="+home)
		_ = kill.Run()
		os.RemoveAll(home)
	})
	gpg("--passphrase", "", "--quick-gen-key", "ferry release test <release-test@ferry.invalid>", "ed25519", "sign", "1d")
	for _, line := range strings.Split(gpg("--with-colons", "--list-secret-keys"), "\n") {
		if f := strings.Split(line, ":"); len(f) > 9 && f[0] == "fpr" {
			return home, f[9]
		}
	}
	t.Fatal("gpg created no key")
	return "", ""
}

// extractFerry unpacks the ferry binary from the CLI's release archive.
func extractFerry(t *testing.T, archive string) string {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("%s has no ferry binary: %v", archive, err)
		}
		if h.Name != "ferry" {
			continue
		}
		bin := filepath.Join(t.TempDir(), "ferry")
		out, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(out, tr); err != nil {
			t.Fatal(err)
		}
		if err := out.Close(); err != nil {
			t.Fatal(err)
		}
		return bin
	}
}

// cachedTool returns a binary of the tool cache, or skips the test when it is not built.
func cachedTool(t *testing.T, name string) string {
	t.Helper()
	bin, err := testenv.ToolPath(name)
	if err == nil {
		var fi os.FileInfo
		if fi, err = os.Stat(bin); err == nil && fi.Mode().Perm()&0o111 == 0 {
			err = fmt.Errorf("%s is not executable", bin)
		}
	}
	if err != nil {
		t.Skipf("%s is not in the tool cache (make tools builds it): %v", name, err)
	}
	return bin
}

// networkMirror is an HTTPS server of Terraform's provider network mirror protocol for the ferry
// provider under any registry hostname, with a CA of its own.
type networkMirror struct {
	url      string
	caFile   string
	tampered atomic.Bool // serve the zip with one byte changed, the hashes unchanged
}

func startMirror(t *testing.T, zips map[string]string, version, zh string, zipData []byte) *networkMirror {
	t.Helper()
	bad := bytes.Clone(zipData)
	bad[len(bad)/2] ^= 0xff
	archives := map[string]any{}
	for platform, name := range zips {
		archives[platform] = map[string]any{"url": name, "hashes": []string{zh}}
	}
	index, _ := json.Marshal(map[string]any{"versions": map[string]any{version: map[string]any{}}})
	versionDoc, _ := json.Marshal(map[string]any{"archives": archives})
	m := &networkMirror{}
	var mu sync.Mutex
	var requests []string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requests = append(requests, r.URL.Path)
		mu.Unlock()
		// /HOSTNAME/ferry-dev/ferry/FILE
		parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")
		if len(parts) != 4 || parts[1] != "ferry-dev" || parts[2] != "ferry" {
			http.NotFound(w, r)
			return
		}
		switch file := parts[3]; {
		case file == "index.json":
			w.Header().Set("Content-Type", "application/json")
			w.Write(index)
		case file == version+".json":
			w.Header().Set("Content-Type", "application/json")
			w.Write(versionDoc)
		case strings.HasSuffix(file, ".zip") && file == zips[runtime.GOOS+"_"+runtime.GOARCH]:
			if m.tampered.Load() {
				w.Write(bad)
			} else {
				w.Write(zipData)
			}
		default:
			http.NotFound(w, r)
		}
	}))
	ca, cert := selfSignedCA(t)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		if t.Failed() {
			mu.Lock()
			defer mu.Unlock()
			t.Logf("network mirror requests: %v", requests)
		}
	})
	m.url = srv.URL + "/"
	m.caFile = filepath.Join(t.TempDir(), "ca.pem")
	writeTestFile(t, m.caFile, string(ca))
	return m
}

// run runs Terraform or OpenTofu in dir with a CLI configuration that installs every provider from
// the mirror only, trusting the mirror's CA alone.
func (m *networkMirror) run(t *testing.T, bin, dir string, args ...string) (string, error) {
	t.Helper()
	rc := filepath.Join(t.TempDir(), "mirror.tfrc")
	writeTestFile(t, rc, "provider_installation {\n  network_mirror {\n    url = \""+m.url+"\"\n  }\n}\n")
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	var env []string
	for _, kv := range os.Environ() {
		// Nothing of the caller's: no plugin cache, data directory or extra arguments.
		if k, _, _ := strings.Cut(kv, "="); !strings.HasPrefix(k, "TF_") && !strings.HasPrefix(k, "TOFU_") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, "TF_CLI_CONFIG_FILE="+rc, "TOFU_CLI_CONFIG_FILE="+rc, "SSL_CERT_FILE="+m.caFile, "SSL_CERT_DIR="+t.TempDir(),
		"CHECKPOINT_DISABLE=1", "TF_IN_AUTOMATION=1", "HOME="+t.TempDir())
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// selfSignedCA returns a new CA's certificate (PEM) and a server certificate it signed for
// 127.0.0.1.
func selfSignedCA(t *testing.T) ([]byte, tls.Certificate) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ferry release test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func exe() string {
	if runtime.GOOS == "windows" {
		return ".exe"
	}
	return ""
}

package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/ferry-dev/terraform-provider-ferry/bundle"
	"github.com/ferry-dev/terraform-provider-ferry/internal/testenv"
)

// TestConsumersOneDigest pushes examples/release (manifests with the render step's output,
// the Terraform module and the plugins: three layers) once with `ferry bundle push`, and has
// every consumer read its own part of that one artifact by its digest, at the same time:
//
//   - Argo CD syncs an Application with repoURL oci://…, targetRevision = the digest, path ".";
//   - Flux's source-controller reconciles an OCIRepository with ref.digest and a layerSelector
//     for the manifests layer's media type (operation extract, insecure: plain HTTP), and serves
//     exactly the bundle's manifests as its artifact;
//   - OpenTofu installs module "infra" from the opentofu_module_source that `ferry bundle
//     inspect` prints (oci://HOST/REPO?digest=…) and plans its outputs. OpenTofu speaks only
//     HTTPS to OCI registries, so it reaches the same registry through a TLS-terminating proxy
//     whose CA it trusts through SSL_CERT_FILE.
func TestConsumersOneDigest(t *testing.T) {
	testenv.SkipShort(t, "a registry, Kubernetes, Argo CD, Flux's source-controller and OpenTofu")
	tofu, err := testenv.Tool("tofu")
	if err != nil {
		t.Fatal(err)
	}
	e := sharedEnv.Get(t)
	flux := testenv.StartFlux(t, e.Cluster, testenv.FluxOptions{})
	env := []string{"DOCKER_CONFIG=" + t.TempDir(), "SOURCE_DATE_EPOCH=1764115200"}
	repo := e.Registry.Addr + "/consumers/shop"

	r := ferry(t, env, "", "bundle", "push", "../../examples/release", repo+":1.4.0", "--plain-http", "--offline", "--format", "json")
	if r.code != 0 {
		t.Fatalf("push exit %d: %s", r.code, r.stderr)
	}
	var pushed struct{ Digest, PinnedReference string }
	if err := json.Unmarshal([]byte(r.stdout), &pushed); err != nil || pushed.PinnedReference != repo+"@"+pushed.Digest {
		t.Fatalf("push --format json = %+v (%v)\n%s", pushed, err, r.stdout)
	}
	digest := pushed.Digest
	r = ferry(t, env, "", "bundle", "inspect", pushed.PinnedReference, "--plain-http", "--format", "json")
	var inspected struct {
		Layers []struct{ MediaType, Title string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &inspected); r.code != 0 || err != nil {
		t.Fatalf("inspect exit %d (%v): %s%s", r.code, err, r.stdout, r.stderr)
	}
	var titles []string
	for _, l := range inspected.Layers {
		titles = append(titles, l.Title)
	}
	if want := []string{"manifests.tar.gz", "terraform.zip", "plugins.zip"}; !reflect.DeepEqual(titles, want) {
		t.Fatalf("bundle layers = %q, want %q (the full example bundle)", titles, want)
	}
	// What each consumer must see: the bundle's own layers, extracted by ferry.
	pulled := t.TempDir()
	if r := ferry(t, env, "", "bundle", "pull", pushed.PinnedReference, "-o", pulled, "--plain-http"); r.code != 0 {
		t.Fatalf("pull exit %d: %s", r.code, r.stderr)
	}
	manifests := readTree(t, filepath.Join(pulled, bundle.RoleManifests))
	if _, ok := manifests["release-info.yaml"]; !ok {
		t.Fatalf("the manifests layer lacks the render step's release-info.yaml: %v", fileNames(manifests))
	}

	t.Run("consumers", func(t *testing.T) {
		t.Run("ArgoCD", func(t *testing.T) {
			t.Parallel()
			ns := e.Cluster.CreateNamespace(t, "consumers-argocd")
			name := ns // unique in the shared Argo CD namespace
			e.Cluster.Apply(t, `apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: `+name+`, namespace: `+e.ArgoCD.Namespace+`}
spec:
  project: default
  source: {repoURL: "oci://`+repo+`", targetRevision: "`+digest+`", path: .}
  destination: {server: "`+e.ArgoCD.ClusterServer+`", namespace: `+ns+`}
`)
			e.ArgoCD.RequestSync(t, name, digest)
			app := e.ArgoCD.WaitApplication(t, name, func(app *unstructured.Unstructured) bool {
				if app == nil {
					return false
				}
				phase, _, _ := unstructured.NestedString(app.Object, "status", "operationState", "phase")
				return phase == "Succeeded" || phase == "Failed" || phase == "Error"
			}, 3*time.Minute)
			phase, _, _ := unstructured.NestedString(app.Object, "status", "operationState", "phase")
			rev, _, _ := unstructured.NestedString(app.Object, "status", "operationState", "syncResult", "revision")
			if phase != "Succeeded" || rev != digest {
				msg, _, _ := unstructured.NestedString(app.Object, "status", "operationState", "message")
				t.Fatalf("Argo CD sync = %s at %q (%s), want Succeeded at %s", phase, rev, msg, digest)
			}
			t.Logf("Argo CD synced %s at %s", name, rev)
			info := e.Cluster.WaitFor(t, "v1", "ConfigMap", ns, "shop-release-info", func(o *unstructured.Unstructured) bool { return o != nil }, 30*time.Second)
			if v, _, _ := unstructured.NestedString(info.Object, "data", "version"); v != "1.4.0" {
				t.Errorf("ConfigMap shop-release-info (the render step's output) version = %q, want 1.4.0", v)
			}
			api := e.Cluster.WaitFor(t, "apps/v1", "Deployment", ns, "shop-api", func(o *unstructured.Unstructured) bool { return o != nil }, 30*time.Second)
			containers, _, _ := unstructured.NestedSlice(api.Object, "spec", "template", "spec", "containers")
			if len(containers) == 0 || !strings.Contains(containers[0].(map[string]any)["image"].(string), "@sha256:") {
				t.Errorf("Deployment shop-api containers = %v, want the image pinned by digest", containers)
			}
		})

		t.Run("Flux", func(t *testing.T) {
			t.Parallel()
			ns := e.Cluster.CreateNamespace(t, "consumers-flux")
			e.Cluster.Apply(t, `apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata: {name: shop, namespace: `+ns+`}
spec:
  interval: 10m
  url: "oci://`+repo+`"
  ref: {digest: "`+digest+`"}
  layerSelector: {mediaType: "`+bundle.MediaTypeManifests+`", operation: extract}
  insecure: true
`)
			src := e.Cluster.WaitFor(t, "source.toolkit.fluxcd.io/v1", "OCIRepository", ns, "shop", testenv.SourceReady, 2*time.Minute)
			artifact, _, _ := unstructured.NestedMap(src.Object, "status", "artifact")
			rev, _ := artifact["revision"].(string)
			if !strings.HasSuffix(rev, digest) {
				t.Errorf("OCIRepository artifact revision = %q, want it to name %s", rev, digest)
			}
			meta, _ := artifact["metadata"].(map[string]any)
			if v := meta["org.opencontainers.image.version"]; v != "1.4.0" {
				t.Errorf("OCIRepository artifact metadata = %v, want the bundle's annotations (version 1.4.0)", meta)
			}
			u, _ := artifact["url"].(string)
			if !strings.HasPrefix(u, "http://"+flux.StorageAddr+"/") {
				t.Fatalf("OCIRepository artifact url = %q, want it served by the source-controller at %s", u, flux.StorageAddr)
			}
			got := fetchTarGz(t, u)
			if !reflect.DeepEqual(got, manifests) {
				t.Errorf("Flux's artifact holds %v, want exactly the bundle's manifests %v", fileNames(got), fileNames(manifests))
			}
			t.Logf("Flux OCIRepository ready at revision %s; artifact %s holds %v", rev, u, fileNames(got))
		})

		t.Run("OpenTofu", func(t *testing.T) {
			t.Parallel()
			host, caFile := testenv.TLSFront(t, e.Registry.RawAddr)
			r := ferry(t, env, "", "bundle", "inspect", host+"/consumers/shop@"+digest, "--ca-file", caFile, "--format", "go-template={{.opentofuModuleSource}}")
			source := strings.TrimSpace(r.stdout)
			if want := "oci://" + host + "/consumers/shop?digest=" + digest; r.code != 0 || source != want {
				t.Fatalf("inspect opentofuModuleSource = %q (exit %d, %s), want %q", source, r.code, r.stderr, want)
			}
			// The module uses only built-in features (terraform_data): no provider may be installed
			// from anywhere, so nothing is downloaded.
			rc := filepath.Join(t.TempDir(), "tofurc")
			writeText(t, rc, "provider_installation {\n  direct {\n    exclude = [\"*/*/*\"]\n  }\n}\n")
			home := t.TempDir()
			root := func(source string) string {
				dir := t.TempDir()
				writeText(t, filepath.Join(dir, "main.tf"), `module "infra" {
  source   = "`+source+`"
  customer = "acme"
}

output "namespace" {
  value = module.infra.namespace
}

output "hostname" {
  value = module.infra.hostname
}
`)
				return dir
			}
			tofuIn := func(dir string, args ...string) (string, error) {
				cmd := exec.Command(tofu, append(args, "-input=false", "-no-color")...)
				cmd.Dir = dir
				cmd.Env = append(os.Environ(), "TF_CLI_CONFIG_FILE="+rc, "SSL_CERT_FILE="+caFile, "HOME="+home,
					"DOCKER_CONFIG="+filepath.Join(home, ".docker"), "CHECKPOINT_DISABLE=1", "TF_IN_AUTOMATION=1",
					"NO_PROXY=127.0.0.1,localhost", "no_proxy=127.0.0.1,localhost", "TF_DATA_DIR=", "TF_PLUGIN_CACHE_DIR=")
				var out bytes.Buffer
				cmd.Stdout, cmd.Stderr = &out, &out
				err := cmd.Run()
				return out.String(), err
			}
			// OpenTofu has no plain-HTTP setting for OCI registries: the registry's own address fails.
			plain := "oci://" + repo + "?digest=" + digest
			if out, err := tofuIn(root(plain), "init"); err == nil || !strings.Contains(out, "server gave HTTP response to HTTPS client") {
				t.Errorf("tofu init from %s: %v, want the HTTPS-only failure\n%s", plain, err, out)
			}

			work := root(source)
			run := func(args ...string) string {
				t.Helper()
				out, err := tofuIn(work, args...)
				if err != nil {
					t.Fatalf("tofu %s: %v\n%s", args[0], err, out)
				}
				return out
			}
			run("init")
			installed := readTree(t, filepath.Join(work, ".terraform", "modules", "infra"))
			if want := readTree(t, filepath.Join(pulled, bundle.RoleTerraform)); !reflect.DeepEqual(installed, want) {
				t.Errorf("tofu init installed %v, want exactly the bundle's Terraform layer %v", fileNames(installed), fileNames(want))
			}
			modules, err := os.ReadFile(filepath.Join(work, ".terraform", "modules", "modules.json"))
			if err != nil || !strings.Contains(string(modules), digest) {
				t.Errorf("modules.json = %s (%v), want the module source with %s", modules, err, digest)
			}
			t.Logf("tofu init installed module infra from %s: %v", source, fileNames(installed))
			plan := run("plan")
			for _, want := range []string{"Changes to Outputs:", `+ namespace = "shop-acme"`, "+ hostname "} {
				if !strings.Contains(plan, want) {
					t.Errorf("tofu plan output lacks %q:\n%s", want, plan)
				}
			}
		})
	})
}

// readTree returns every regular file under dir by its slash-separated relative path.
func readTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		files[filepath.ToSlash(rel)] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// fetchTarGz downloads a tar+gzip archive and returns its regular files by path.
func fetchTarGz(t *testing.T, u string) map[string]string {
	t.Helper()
	resp, err := (&http.Client{Transport: &http.Transport{Proxy: nil}}).Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", u, resp.Status)
	}
	zr, err := gzip.NewReader(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	files := map[string]string{}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatalf("GET %s: %v", u, err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[path.Clean(strings.TrimPrefix(h.Name, "./"))] = string(b)
	}
}

func fileNames(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func writeText(t *testing.T, p, content string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

package provider

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	"oras.land/oras-go/v2/registry/remote/auth"

	"github.com/ferry-dev/terraform-provider-ferry/bundle"
	"github.com/ferry-dev/terraform-provider-ferry/internal/bundletest"
	"github.com/ferry-dev/terraform-provider-ferry/internal/testenv"
)

// pushTestBundle pushes a small release whose api image lives in reg, and returns the push result.
func pushTestBundle(t *testing.T, reg *testenv.Registry, repo string) (*bundle.PushResult, string) {
	t.Helper()
	api := reg.PushImage(t, "shop/api", "1.4.0", "api")
	dir := t.TempDir()
	files := map[string]string{
		"ferry.yaml":  "apiVersion: ferry.dev/v1\nkind: Bundle\nname: shop\nversion: 1.4.0\nsource: https://git.example.com/shop\nrevision: abc\nmanifests: m\nterraform: tf\nplugins: p\nimages:\n  api: " + reg.Addr + "/shop/api:1.4.0\n",
		"m/api.yaml":  "apiVersion: v1\nkind: Pod\nmetadata:\n  name: api\nspec:\n  containers:\n  - image: " + reg.Addr + "/shop/api:1.4.0\n",
		"tf/main.tf":  "output \"x\" { value = 1 }\n",
		"p/plugin.sh": "echo\n",
	}
	for p, c := range files {
		full := filepath.Join(dir, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c, err := bundle.NewClient(bundle.ClientOptions{PlainHTTP: true, Credentials: bundle.StaticCredentials(map[string]auth.Credential{reg.Addr: reg.Credential()}, nil)})
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := bundle.ParseReference(reg.Addr + "/" + repo + ":1.4.0")
	res, err := bundle.Push(context.Background(), c, dir, ref, bundle.PushOptions{PackOptions: bundle.PackOptions{Created: time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)}})
	if err != nil {
		t.Fatal(err)
	}
	return res, api.Digest.String()
}

func providerConfig(addr, extra string) string {
	return fmt.Sprintf(`
provider "ferry" {
  registry {
    address    = %[1]q
    plain_http = true
%[2]s
  }
}
`, addr, extra)
}

func TestAccBundleDataSource(t *testing.T) {
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	res, apiDigest := pushTestBundle(t, reg, "shop/bundle")
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	repo := reg.Addr + "/shop/bundle"
	checks := func(name string) []statecheck.StateCheck {
		addr := "data.ferry_bundle." + name
		return []statecheck.StateCheck{
			statecheck.ExpectKnownValue(addr, tfjsonpath.New("digest"), knownvalue.StringExact(res.Digest)),
			statecheck.ExpectKnownValue(addr, tfjsonpath.New("id"), knownvalue.StringExact(res.Digest)),
			statecheck.ExpectKnownValue(addr, tfjsonpath.New("pinned_reference"), knownvalue.StringExact(repo+"@"+res.Digest)),
			statecheck.ExpectKnownValue(addr, tfjsonpath.New("repository"), knownvalue.StringExact(repo)),
			statecheck.ExpectKnownValue(addr, tfjsonpath.New("name"), knownvalue.StringExact("shop")),
			statecheck.ExpectKnownValue(addr, tfjsonpath.New("version"), knownvalue.StringExact("1.4.0")),
			statecheck.ExpectKnownValue(addr, tfjsonpath.New("created"), knownvalue.StringExact("2026-11-26T00:00:00Z")),
			statecheck.ExpectKnownValue(addr, tfjsonpath.New("source"), knownvalue.StringExact("https://git.example.com/shop")),
			statecheck.ExpectKnownValue(addr, tfjsonpath.New("revision"), knownvalue.StringExact("abc")),
			statecheck.ExpectKnownValue(addr, tfjsonpath.New("annotations").AtMapKey("org.opencontainers.image.version"), knownvalue.StringExact("1.4.0")),
			statecheck.ExpectKnownValue(addr, tfjsonpath.New("images").AtMapKey("api"), knownvalue.ObjectExact(map[string]knownvalue.Check{
				"reference":        knownvalue.StringExact(reg.Addr + "/shop/api:1.4.0"),
				"repository":       knownvalue.StringExact(reg.Addr + "/shop/api"),
				"tag":              knownvalue.StringExact("1.4.0"),
				"digest":           knownvalue.StringExact(apiDigest),
				"pinned_reference": knownvalue.StringExact(reg.Addr + "/shop/api@" + apiDigest),
				"media_type":       knownvalue.StringExact("application/vnd.oci.image.manifest.v1+json"),
			})),
			statecheck.ExpectKnownValue(addr, tfjsonpath.New("layers"), knownvalue.ListExact([]knownvalue.Check{
				knownvalue.ObjectPartial(map[string]knownvalue.Check{"role": knownvalue.StringExact("manifests"), "media_type": knownvalue.StringExact("application/vnd.oci.image.layer.v1.tar+gzip"), "digest": knownvalue.StringExact(res.Layers[0].Digest), "size": knownvalue.Int64Exact(res.Layers[0].Size)}),
				knownvalue.ObjectPartial(map[string]knownvalue.Check{"role": knownvalue.StringExact("terraform"), "media_type": knownvalue.StringExact("archive/zip")}),
				knownvalue.ObjectPartial(map[string]knownvalue.Check{"role": knownvalue.StringExact("plugins"), "media_type": knownvalue.StringExact("application/vnd.ferry.plugins.v1+zip")}),
			})),
			statecheck.ExpectKnownValue(addr, tfjsonpath.New("argocd_source"), knownvalue.ObjectExact(map[string]knownvalue.Check{
				"repo_url": knownvalue.StringExact("oci://" + repo), "target_revision": knownvalue.StringExact(res.Digest), "path": knownvalue.StringExact("."),
			})),
			statecheck.ExpectKnownValue(addr, tfjsonpath.New("opentofu_module_source"), knownvalue.StringExact("oci://"+repo+"?digest="+res.Digest)),
		}
	}
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testProviderFactories,
		Steps: []resource.TestStep{
			{
				Config:            providerConfig(reg.Addr, "") + fmt.Sprintf(`data "ferry_bundle" "by_tag" { reference = %q }`, repo+":1.4.0"),
				ConfigStateChecks: checks("by_tag"),
			},
			{
				Config:            providerConfig(reg.Addr, "") + fmt.Sprintf(`data "ferry_bundle" "by_digest" { reference = %q }`, repo+"@"+res.Digest),
				ConfigStateChecks: checks("by_digest"),
			},
		},
	})
}

func TestAccBundleDataSourceErrors(t *testing.T) {
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	pushTestBundle(t, reg, "shop/bundle")
	hostile := bundletest.Valid()
	hostile.Config.Layers[0].Role = "../escaped-role"
	if _, err := hostile.Store(context.Background(), reg.Repository(t, "shop/hostile"), "1"); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	cfg := providerConfig(reg.Addr, "")
	tests := []struct {
		name, config string
		want         string
	}{
		// The data source reads bundles through the same reader as ferry bundle inspect and pull.
		{"hostile role", cfg + fmt.Sprintf(`data "ferry_bundle" "x" { reference = %q }`, reg.Addr+"/shop/hostile:1"),
			`(?s)Not a Ferry Bundle.*layers\[0\]\.role.*escaped-role.*is\s+not\s+a\s+layer\s+role`},
		{"missing tag", cfg + fmt.Sprintf(`data "ferry_bundle" "x" { reference = %q }`, reg.Addr+"/shop/bundle:9.9.9"), `Bundle Not Found`},
		{"missing repository", cfg + fmt.Sprintf(`data "ferry_bundle" "x" { reference = %q }`, reg.Addr+"/shop/none:1"), `Bundle Not Found`},
		{"not a ferry artifact", cfg + fmt.Sprintf(`data "ferry_bundle" "x" { reference = %q }`, reg.Addr+"/shop/api:1.4.0"), `Not a Ferry Bundle`},
		{"bad reference", cfg + `data "ferry_bundle" "x" { reference = "shop:1" }`, `Invalid Bundle Reference`},
		{"bad registry address", `
provider "ferry" {
  registry { address = "https://x/y" }
}
data "ferry_bundle" "x" { reference = "registry.example.com/a:1" }`, `Invalid Registry Address`},
		{"half credentials", `
provider "ferry" {
  registry {
    address  = "registry.example.com"
    username = "u"
  }
}
data "ferry_bundle" "x" { reference = "registry.example.com/a:1" }`, `(?s)Incomplete Registry Credentials.*Set password too`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resource.UnitTest(t, resource.TestCase{
				ProtoV6ProviderFactories: testProviderFactories,
				Steps:                    []resource.TestStep{{Config: tt.config, ExpectError: regexp.MustCompile(tt.want)}},
			})
		})
	}
}

func TestAccBundleDataSourceAuth(t *testing.T) {
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{Auth: true})
	res, _ := pushTestBundle(t, reg, "shop/bundle")
	ref := reg.Addr + "/shop/bundle:1.4.0"
	data := fmt.Sprintf(`data "ferry_bundle" "x" { reference = %q }`, ref)
	digest := []statecheck.StateCheck{statecheck.ExpectKnownValue("data.ferry_bundle.x", tfjsonpath.New("digest"), knownvalue.StringExact(res.Digest))}

	t.Run("registry block", func(t *testing.T) {
		t.Setenv("DOCKER_CONFIG", t.TempDir())
		resource.UnitTest(t, resource.TestCase{
			ProtoV6ProviderFactories: testProviderFactories,
			Steps: []resource.TestStep{{
				Config:            providerConfig(reg.Addr, fmt.Sprintf("    username = %q\n    password = %q", reg.Username, reg.Password)) + data,
				ConfigStateChecks: digest,
			}},
		})
	})
	t.Run("docker config", func(t *testing.T) {
		dir := t.TempDir()
		authStr := base64.StdEncoding.EncodeToString([]byte(reg.Username + ":" + reg.Password))
		if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, reg.Addr, authStr)), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Setenv("DOCKER_CONFIG", dir)
		resource.UnitTest(t, resource.TestCase{
			ProtoV6ProviderFactories: testProviderFactories,
			Steps:                    []resource.TestStep{{Config: providerConfig(reg.Addr, "") + data, ConfigStateChecks: digest}},
		})
	})
	t.Run("wrong credentials", func(t *testing.T) {
		t.Setenv("DOCKER_CONFIG", t.TempDir())
		resource.UnitTest(t, resource.TestCase{
			ProtoV6ProviderFactories: testProviderFactories,
			Steps: []resource.TestStep{{
				Config:      providerConfig(reg.Addr, fmt.Sprintf("    username = %q\n    password = \"wrong\"", reg.Username)) + data,
				ExpectError: regexp.MustCompile(`Registry Access Denied`),
			}},
		})
	})
	t.Run("no credentials", func(t *testing.T) {
		t.Setenv("DOCKER_CONFIG", t.TempDir())
		resource.UnitTest(t, resource.TestCase{
			ProtoV6ProviderFactories: testProviderFactories,
			Steps:                    []resource.TestStep{{Config: providerConfig(reg.Addr, "") + data, ExpectError: regexp.MustCompile(`Registry Access Denied`)}},
		})
	})
}

// TestAccBundleDataSourceCache reads a digest once to fill the disk cache, then reads it again
// through a counting proxy: every request of the second step is the one resolve (HEAD) per read,
// never a manifest or blob download.
func TestAccBundleDataSourceCache(t *testing.T) {
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	res, _ := pushTestBundle(t, reg, "shop/bundle")
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	t.Setenv(EnvCacheDir, t.TempDir())
	proxy := testenv.StartFaultProxy(t, reg.Addr, 0, 0)
	cfg := providerConfig(proxy.Addr, "") + fmt.Sprintf(`data "ferry_bundle" "x" { reference = %q }`, proxy.Addr+"/shop/bundle@"+res.Digest)
	digest := []statecheck.StateCheck{statecheck.ExpectKnownValue("data.ferry_bundle.x", tfjsonpath.New("digest"), knownvalue.StringExact(res.Digest))}
	var before int
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testProviderFactories,
		Steps: []resource.TestStep{
			{Config: cfg, ConfigStateChecks: digest},
			{
				PreConfig:         func() { before = proxy.Requests() },
				Config:            cfg,
				ConfigStateChecks: digest,
			},
		},
	})
	second := proxy.Log()[before:]
	if len(second) == 0 {
		t.Fatalf("the second step sent no request, want one resolve per read")
	}
	for _, line := range second {
		if !strings.HasPrefix(line, "HEAD /v2/shop/bundle/manifests/"+res.Digest) {
			t.Errorf("a cached read sent %q, want only the resolve HEAD", line)
		}
	}
	if first := proxy.Log()[:before]; !containsPrefix(first, "GET /v2/shop/bundle/blobs/") {
		t.Errorf("the first step never fetched the config: %v", first)
	}
}

func containsPrefix(lines []string, prefix string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

// TestAccBundleDataSourceInsecureRegistry: insecure = true skips certificate verification for the
// registry it is set on, and only for it.
func TestAccBundleDataSourceInsecureRegistry(t *testing.T) {
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	res, _ := pushTestBundle(t, reg, "shop/bundle")
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	// The registry behind a TLS proxy whose certificate no trust store has.
	target, _ := url.Parse("http://" + reg.RawAddr)
	ts := httptest.NewUnstartedServer(&httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(target)
		pr.Out.Host = pr.In.Host
		pr.SetXForwarded()
	}})
	ts.StartTLS()
	t.Cleanup(ts.Close)
	host := strings.TrimPrefix(ts.URL, "https://")
	data := fmt.Sprintf(`data "ferry_bundle" "x" { reference = %q }`, host+"/shop/bundle@"+res.Digest)
	registry := func(addr, extra string) string {
		return fmt.Sprintf("provider \"ferry\" {\n  registry {\n    address = %q\n%s\n  }\n}\n", addr, extra)
	}
	for _, tt := range []struct {
		name, config, want string
	}{
		{"verified by default", registry(host, "") + data, `Registry Certificate Not Trusted`},
		{"insecure on another registry", registry("other.example.com", "insecure = true") + data, `Registry Certificate Not Trusted`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resource.UnitTest(t, resource.TestCase{
				ProtoV6ProviderFactories: testProviderFactories,
				Steps:                    []resource.TestStep{{Config: tt.config, ExpectError: regexp.MustCompile(tt.want)}},
			})
		})
	}
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testProviderFactories,
		Steps: []resource.TestStep{{
			Config:            registry(host, "insecure = true") + data,
			ConfigStateChecks: []statecheck.StateCheck{statecheck.ExpectKnownValue("data.ferry_bundle.x", tfjsonpath.New("digest"), knownvalue.StringExact(res.Digest))},
		}},
	})
}

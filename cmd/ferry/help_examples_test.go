package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/ferry-dev/terraform-provider-ferry/bundle"
	"github.com/ferry-dev/terraform-provider-ferry/cmd/ferry/root"
	"github.com/ferry-dev/terraform-provider-ferry/internal/argocd"
)

// helpExamples returns every example of every command's --help ("  ferry …" lines), in the order
// of the command tree.
func helpExamples(cmd *cobra.Command) []string {
	var out []string
	for _, m := range regexp.MustCompile(`(?m)^  (ferry .+)$`).FindAllStringSubmatch(cmd.Long, -1) {
		out = append(out, m[1])
	}
	for _, sub := range cmd.Commands() {
		out = append(out, helpExamples(sub)...)
	}
	return out
}

// shellWords splits an example as a shell would: words, single and double quotes; a "||" or "|"
// ends the command.
func shellWords(t *testing.T, s string) []string {
	t.Helper()
	var (
		words []string
		cur   strings.Builder
		quote rune
		in    bool
	)
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '\'' || r == '"':
			quote, in = r, true
		case r == ' ':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		case r == '|' && !in:
			return words
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if quote != 0 {
		t.Fatalf("example %q: unterminated quote", s)
	}
	if in {
		words = append(words, cur.String())
	}
	return words
}

// TestCLIHelpExamples runs every example of every command's --help, in the order written here,
// against the test environment's real registry and Argo CD, and wants each to succeed. The example
// text is kept; only what names the environment is rewritten: registry.example.com/shop/bundle is a
// repository of the test registry (plain HTTP, so the bundle commands get --plain-http), ./release a release of one
// ConfigMap, /tmp and ./ paths are the test's directories, "sha256:…" is the digest the first push
// printed, registry.acme.internal/shop/bundle another repository of it, an archive FILE.tar a file
// in the test's directory, shop-acme and acme are an application and an environment in Argo CD's namespace
// (--argocd-namespace is added). An example added to a command fails the test until it is listed
// (those of `ferry fleet rollout` in TestCLIFleetRolloutExamples).
func TestCLIHelpExamples(t *testing.T) {
	e := sharedEnv.Get(t)
	examples := []string{
		"ferry bundle push ./release registry.example.com/shop/bundle:1.4.0 --tag latest",
		"ferry bundle push ./release oci-layout:/tmp/shop:1.4.0 --offline",
		"ferry bundle push ./release registry.example.com/shop/bundle:1.4.0 --sign-key cosign.key",
		"ferry bundle push ./release registry.example.com/shop/bundle:1.4.0 --format json",
		"ferry bundle inspect oci-layout:/tmp/shop:1.4.0",
		"ferry bundle inspect registry.example.com/shop/bundle:1.4.0 --format go-template='{{.digest}}'",
		"ferry bundle pull registry.example.com/shop/bundle@sha256:… -o ./shop --only terraform",
		"ferry bundle sign registry.example.com/shop/bundle:1.4.0 --key cosign.key",
		"ferry bundle verify registry.example.com/shop/bundle:1.4.0 --key cosign.pub --key release-2025.pub",
		"ferry bundle verify registry.example.com/shop/bundle:1.4.0 --key cosign.pub --require-attestation sbom --require-attestation provenance",
		"ferry bundle copy registry.example.com/shop/bundle:1.4.0 registry.acme.internal/shop/bundle",
		"ferry bundle copy registry.example.com/shop/bundle:1.4.0 --to-archive shop-1.4.0.tar",
		"ferry bundle copy --from-archive shop-1.4.0.tar registry.acme.internal/shop/bundle",
		"ferry app sync shop-acme",
		"ferry app wait shop-acme --timeout 15m",
		"ferry app sync shop-acme --bundle registry.example.com/shop/bundle@sha256:… --window-policy wait",
		`ferry window check --environment acme || echo "closed: try later"`,
		"ferry window check --environment acme --at 2026-12-24T10:00:00Z --format json",
		"ferry fleet status --bundle registry.example.com/shop/bundle:1.4.0",
		"ferry fleet status -l tier=canary --format json",
		"ferry fleet status --environment acme --format go-template='{{.counts.done}}/{{.counts.total}} done'",
		"ferry version",
		"ferry version --format json",
	}
	// `ferry fleet rollout`'s examples need a fleet.yaml and a fleet of their own:
	// TestCLIFleetRolloutExamples runs them.
	var written []string
	for _, ex := range helpExamples(root.New("test")) {
		if !strings.HasPrefix(ex, "ferry fleet rollout ") {
			written = append(written, ex)
		}
	}
	if a, b := slices.Sorted(slices.Values(written)), slices.Sorted(slices.Values(examples)); !slices.Equal(a, b) {
		t.Fatalf("the --help examples are\n%s\nwant this test to run exactly\n%s", strings.Join(written, "\n"), strings.Join(examples, "\n"))
	}

	appFixture(t, e, "shop-acme", e.ArgoCD.ClusterServer, nil, map[string]string{"cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: shop}\ndata: {v: \"1.3.0\"}\n"})
	c, err := argocd.New(e.Cluster.RESTConfig(), e.ArgoCD.Namespace)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ApplyEnvironment(context.Background(), argocd.Environment{
		Name: "acme", Namespaces: []string{"acme"}, SourceRepositories: []string{"oci://" + e.Registry.Addr + "/cli/*"},
		Cluster: argocd.Cluster{Server: e.ArgoCD.ClusterServer, BearerToken: e.Cluster.Token, Insecure: true},
	}); err != nil {
		t.Fatal(err)
	}
	release := writeRelease(t, map[string]string{
		"ferry.yaml": "apiVersion: ferry.dev/v1\nkind: Bundle\nname: shop\nversion: 1.4.0\nmanifests: m\nterraform: tf\n",
		"m/cm.yaml":  "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: shop}\n",
		"tf/main.tf": "output \"version\" { value = \"1.4.0\" }\n",
	})
	tmp, work := t.TempDir(), t.TempDir()
	// The signing examples' keys: cosign.key (its password in $FERRY_KEY_PASSWORD) and cosign.pub,
	// and another trusted key.
	keys := map[string]string{}
	for _, name := range []string{"cosign", "release-2025"} {
		priv, pub, err := bundle.GenerateKeyPair([]byte("example-password"))
		if err != nil {
			t.Fatal(err)
		}
		keys[name+".key"], keys[name+".pub"] = filepath.Join(tmp, name+".key"), filepath.Join(tmp, name+".pub")
		os.WriteFile(keys[name+".key"], priv, 0o600)
		os.WriteFile(keys[name+".pub"], pub, 0o644)
	}
	env := []string{"DOCKER_CONFIG=" + t.TempDir(), "FERRY_CACHE_DIR=" + t.TempDir(), "KUBE_CONFIG_PATH=" + e.Cluster.Kubeconfig, "SOURCE_DATE_EPOCH=1764115200",
		"FERRY_KEY_PASSWORD=example-password"}
	digest := ""
	for _, ex := range examples {
		words := shellWords(t, ex)[1:]
		var args []string
		for _, w := range words {
			w = strings.ReplaceAll(w, "registry.example.com/shop/bundle", e.Registry.Addr+"/cli/bundle")
			w = strings.ReplaceAll(w, "registry.acme.internal/shop/bundle", e.Registry.Addr+"/cli/acme/bundle")
			w = strings.ReplaceAll(w, "sha256:…", digest)
			w = strings.Replace(w, "/tmp/", tmp+"/", 1)
			if k, ok := keys[w]; ok {
				w = k
			} else if w == "./release" {
				w = release
			} else if strings.HasPrefix(w, "./") {
				w = work + w[1:]
			} else if strings.HasSuffix(w, ".tar") {
				w = filepath.Join(work, w)
			}
			args = append(args, w)
		}
		if (args[0] == "bundle" || args[0] == "fleet") && (strings.Contains(ex, "registry.example.com") || strings.Contains(ex, "registry.acme.internal")) {
			args = append(args, "--plain-http")
		}
		if args[0] == "app" || args[0] == "window" || args[0] == "fleet" {
			args = append(args, "--argocd-namespace", e.ArgoCD.Namespace)
		}
		r := ferry(t, env, "", args...)
		if r.code != 0 {
			t.Fatalf("example %q (ferry %s) = exit %d\n%s%s", ex, strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
		if digest == "" {
			m := regexp.MustCompile(`sha256:[0-9a-f]{64}`).FindString(r.stdout)
			if m == "" {
				t.Fatalf("example %q printed no digest:\n%s", ex, r.stdout)
			}
			digest = m
		}
	}
}

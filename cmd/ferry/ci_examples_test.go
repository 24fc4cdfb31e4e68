package main

import (
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/ferry-dev/terraform-provider-ferry/bundle"
	"github.com/ferry-dev/terraform-provider-ferry/internal/testenv"
)

// TestCIExamples runs the push steps of examples/ci (the GitHub Actions workflow and the GitLab CI
// job the CI guide shows) as the CI services would: their shell, their environment variables, the
// built ferry on PATH instead of `go install`, against an HTTPS registry that requires a login.
// Each leaves the pushed bundle's digest in push.json and its Terraform module source where the
// snippet says; the signed workflow signs with a key from a secret, attaches the SBOM and the
// provenance, and verifies them with the committed public key.
func TestCIExamples(t *testing.T) {
	testenv.SkipShort(t, "a registry")
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{Auth: true})
	host, ca := testenv.TLSFront(t, reg.Addr)
	reg.PushImage(t, "shop/api", "1.4.0", "api")
	bin := filepath.Dir(ferryBin)

	release := func(t *testing.T) string {
		work := t.TempDir()
		for name, content := range map[string]string{
			"release/ferry.yaml":         "apiVersion: ferry.dev/v1\nkind: Bundle\nname: shop\nversion: 1.4.0\nimages:\n  api: " + host + "/shop/api:1.4.0\nmanifests: manifests\nterraform: terraform\n",
			"release/manifests/api.yaml": "apiVersion: v1\nkind: Pod\nmetadata:\n  name: api\nspec:\n  containers:\n  - name: api\n    image: " + host + "/shop/api:1.4.0\n",
			"release/terraform/main.tf":  "output \"ok\" {\n  value = true\n}\n",
		} {
			if err := os.MkdirAll(filepath.Dir(filepath.Join(work, name)), 0o755); err != nil {
				t.Fatal(err)
			}
			writeText(t, filepath.Join(work, name), content)
		}
		return work
	}
	run := func(t *testing.T, work, script string, env map[string]string) {
		t.Helper()
		cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
		cmd.Dir = work
		cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "DOCKER_CONFIG="+t.TempDir(), "SSL_CERT_FILE="+ca, "FERRY_CACHE_DIR="+t.TempDir())
		for _, k := range slices.Sorted(maps.Keys(env)) {
			cmd.Env = append(cmd.Env, k+"="+env[k])
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("the example's script failed: %v\n%s\n--- script:\n%s", err, out, script)
		}
	}
	pushed := func(t *testing.T, work string) string {
		t.Helper()
		var res struct{ Digest, PinnedReference string }
		b, err := os.ReadFile(filepath.Join(work, "push.json"))
		if err != nil || json.Unmarshal(b, &res) != nil || !strings.HasPrefix(res.PinnedReference, host+"/shop/bundle@sha256:") {
			t.Fatalf("push.json = %s, %v; want the pushed bundle", b, err)
		}
		return res.Digest
	}
	moduleSource := "https://" + host + "/v2/shop/bundle/blobs/sha256:"

	githubActions := func(t *testing.T, file string, env, files map[string]string) (work, out string) {
		var wf struct {
			Jobs map[string]struct {
				Steps []struct {
					ID  string            `yaml:"id"`
					Env map[string]string `yaml:"env"`
					Run string            `yaml:"run"`
				} `yaml:"steps"`
			} `yaml:"jobs"`
		}
		readYAML(t, "../../examples/ci/"+file, &wf)
		i := slices.IndexFunc(wf.Jobs["push"].Steps, func(s struct {
			ID  string            `yaml:"id"`
			Env map[string]string `yaml:"env"`
			Run string            `yaml:"run"`
		}) bool {
			return s.ID == "push"
		})
		if i < 0 {
			t.Fatalf("examples/ci/%s: no step with id push in job push", file)
		}
		step := wf.Jobs["push"].Steps[i]
		// What GitHub puts into the step's env: expressions replaced by their values here.
		maps.Copy(env, map[string]string{"REGISTRY": host, "REPOSITORY": host + "/shop/bundle", "REGISTRY_USER": reg.Username,
			"FERRY_REGISTRY_PASSWORD": reg.Password, "VERSION": "v1.4.0"})
		if got, want := slices.Sorted(maps.Keys(step.Env)), slices.Sorted(maps.Keys(env)); !slices.Equal(got, want) {
			t.Fatalf("the push step's env has %v; this test gives %v", got, want)
		}
		work = release(t)
		for name, content := range files {
			os.MkdirAll(filepath.Dir(filepath.Join(work, name)), 0o755)
			writeText(t, filepath.Join(work, name), content)
		}
		env["GITHUB_OUTPUT"] = filepath.Join(work, "github-output")
		env["RUNNER_TEMP"] = t.TempDir()
		run(t, work, step.Run, env)
		b, _ := os.ReadFile(env["GITHUB_OUTPUT"])
		return work, string(b)
	}

	t.Run("github actions", func(t *testing.T) {
		work, out := githubActions(t, "github-actions.yml", map[string]string{}, nil)
		digest := pushed(t, work)
		if !strings.Contains(out, "pinned="+host+"/shop/bundle@"+digest+"\n") || !strings.Contains(out, "module-source="+moduleSource) {
			t.Errorf("step outputs:\n%s\nwant pinned=%s/shop/bundle@%s and module-source=%s…", out, host, digest, moduleSource)
		}
	})

	t.Run("github actions, signed", func(t *testing.T) {
		priv, pub, err := bundle.GenerateKeyPair([]byte("ci-secret"))
		if err != nil {
			t.Fatal(err)
		}
		work, out := githubActions(t, "github-actions-signed.yml", map[string]string{"SIGNING_KEY": string(priv), "FERRY_KEY_PASSWORD": "ci-secret"},
			map[string]string{"keys/release.pub": string(pub)})
		digest := pushed(t, work)
		var res bundle.PushResult
		b, _ := os.ReadFile(filepath.Join(work, "push.json"))
		if err := json.Unmarshal(b, &res); err != nil || res.Signature == "" || len(res.Attestations) != 2 {
			t.Errorf("push.json = %s, want a signature and two attestations", b)
		}
		if !strings.Contains(out, "pinned="+host+"/shop/bundle@"+digest+"\n") {
			t.Errorf("step outputs:\n%s\nwant pinned=%s/shop/bundle@%s", out, host, digest)
		}
	})

	t.Run("gitlab ci", func(t *testing.T) {
		var jobs map[string]struct {
			Variables map[string]string `yaml:"variables"`
			Script    []string          `yaml:"script"`
		}
		readYAML(t, "../../examples/ci/gitlab-ci.yml", &jobs)
		job, ok := jobs["push-bundle"]
		if !ok {
			t.Fatal("examples/ci/gitlab-ci.yml: no job push-bundle")
		}
		// GitLab's predefined variables for a tag pipeline, then the job's own variables.
		env := map[string]string{"CI_REGISTRY": host, "CI_REGISTRY_IMAGE": host + "/shop", "CI_REGISTRY_USER": reg.Username,
			"CI_REGISTRY_PASSWORD": reg.Password, "CI_COMMIT_TAG": "v1.4.0"}
		for k, v := range job.Variables {
			env[k] = os.Expand(v, func(name string) string { return env[name] })
		}
		var script []string
		for _, line := range job.Script {
			if !strings.HasPrefix(line, "go install ") { // ferry is on PATH already
				script = append(script, line)
			}
		}
		work := release(t)
		run(t, work, strings.Join(script, "\n"), env)
		pushed(t, work)
		if src, _ := os.ReadFile(filepath.Join(work, "module-source.txt")); !strings.HasPrefix(string(src), moduleSource) {
			t.Errorf("module-source.txt = %q, want %s…", src, moduleSource)
		}
	})
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

package bundle

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-dev/terraform-provider-ferry/internal/testenv"
)

// useCredentialHelper puts docker-credential-ferrytest on PATH and a docker config using it in
// DOCKER_CONFIG (config.json is the given JSON), with the helper's store holding creds. It returns
// the config file and the helper's call log.
func useCredentialHelper(t *testing.T, config string, creds map[string]map[string]string) (configFile, log string) {
	t.Helper()
	helper := testenv.BuildCommand(t, "docker-credential-ferrytest")
	t.Setenv("PATH", filepath.Dir(helper)+string(os.PathListSeparator)+os.Getenv("PATH"))
	dir := t.TempDir()
	configFile = filepath.Join(dir, "config.json")
	if err := os.WriteFile(configFile, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", dir)
	store, _ := json.Marshal(creds)
	storeFile := filepath.Join(dir, "helper-store.json")
	if err := os.WriteFile(storeFile, store, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("FERRYTEST_CREDS", storeFile)
	log = filepath.Join(dir, "helper.log")
	t.Setenv("FERRYTEST_LOG", log)
	t.Setenv("FERRYTEST_FAIL", "")
	return configFile, log
}

// TestRegistryCredentialHelper pushes and inspects against a registry with htpasswd auth, the
// credential coming from a real docker credential helper (credHelpers, then credsStore), and
// checks the errors of a helper that fails and of one that has no credential.
func TestRegistryCredentialHelper(t *testing.T) {
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{Auth: true})
	ctx := context.Background()
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"ferry.yaml": "apiVersion: ferry.dev/v1\nkind: Bundle\nname: a\nversion: 1\nplugins: p\n", "p/x": "x"})
	opts := PushOptions{PackOptions: PackOptions{Created: testCreated}}
	good := map[string]map[string]string{reg.Addr: {"Username": reg.Username, "Secret": reg.Password}}
	client := func(t *testing.T) *Client {
		c, err := NewClient(ClientOptions{PlainHTTP: true, RetryBackoff: 1})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	for _, tt := range []struct{ name, config string }{
		{"credHelpers", `{"credHelpers":{"` + reg.Addr + `":"ferrytest"}}`},
		{"credsStore", `{"credsStore":"ferrytest"}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, log := useCredentialHelper(t, tt.config, good)
			ref := mustRef(t, reg.Addr+"/shop/helper:"+tt.name)
			if _, err := Push(ctx, client(t), dir, ref, opts); err != nil {
				t.Fatalf("Push() through the helper = %v", err)
			}
			if _, err := Inspect(ctx, client(t), ref); err != nil {
				t.Errorf("Inspect() through the helper = %v", err)
			}
			if calls, _ := os.ReadFile(log); !strings.Contains(string(calls), "get "+reg.Addr+"\n") {
				t.Errorf("helper calls = %q, want get %s", calls, reg.Addr)
			}
		})
	}

	t.Run("helper fails", func(t *testing.T) {
		cfg, _ := useCredentialHelper(t, `{"credHelpers":{"`+reg.Addr+`":"ferrytest"}}`, good)
		t.Setenv("FERRYTEST_FAIL", "the vault is sealed")
		_, err := Inspect(ctx, client(t), mustRef(t, reg.Addr+"/shop/helper:credHelpers"))
		var ce *CredentialError
		if !errors.Is(err, ErrUnauthorized) || !errors.As(err, &ce) || ce.Refused || ce.Source.Helper != "docker-credential-ferrytest" {
			t.Fatalf("Inspect() with a failing helper = %v, want a CredentialError of docker-credential-ferrytest", err)
		}
		want := "credential helper docker-credential-ferrytest (credHelpers entry for " + reg.Addr + " in " + cfg + ") failed for " + reg.Addr + ": the vault is sealed"
		if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "check the helper") {
			t.Errorf("Inspect() error = %v, want it to contain %q and what to do", err, want)
		}
	})
	t.Run("helper has no credential", func(t *testing.T) {
		cfg, _ := useCredentialHelper(t, `{"credsStore":"ferrytest"}`, nil)
		_, err := Inspect(ctx, client(t), mustRef(t, reg.Addr+"/shop/helper:credHelpers"))
		var ce *CredentialError
		if !errors.Is(err, ErrUnauthorized) || !errors.As(err, &ce) || !ce.Refused {
			t.Fatalf("Inspect() with no credential in the helper = %v, want a refused CredentialError", err)
		}
		want := "credentials from credential helper docker-credential-ferrytest (credsStore of " + cfg + ")"
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Inspect() error = %v, want it to contain %q", err, want)
		}
	})
}

func TestDockerCredentialSource(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // no platform default helper
	tests := []struct {
		name, config string // "" = no config file
		want         string
		kind         CredentialKind
	}{
		{"no config file", "", "no credentials (CONFIG has none for r.example)", CredentialsNone},
		{"auths", `{"auths":{"r.example":{"auth":"eDp5"}}}`, "the auths entry for r.example in CONFIG (written by ferry login or docker login)", CredentialsDockerConfig},
		{"legacy auths key", `{"auths":{"https://r.example/v1/":{"auth":"eDp5"}}}`, "the auths entry for r.example in CONFIG (written by ferry login or docker login)", CredentialsDockerConfig},
		{"credHelpers over credsStore", `{"credHelpers":{"r.example":"ecr-login"},"credsStore":"pass"}`, "credential helper docker-credential-ecr-login (credHelpers entry for r.example in CONFIG)", CredentialsHelper},
		{"credsStore over auths", `{"credHelpers":{"other":"x"},"credsStore":"pass","auths":{"r.example":{}}}`, "credential helper docker-credential-pass (credsStore of CONFIG)", CredentialsHelper},
		{"other host", `{"auths":{"other.example":{}}}`, "no credentials (CONFIG has none for r.example)", CredentialsNone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			t.Setenv("DOCKER_CONFIG", dir)
			cfg := filepath.Join(dir, "config.json")
			if tt.config != "" {
				if err := os.WriteFile(cfg, []byte(tt.config), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			src := DockerCredentialSource("r.example")
			if want := strings.ReplaceAll(tt.want, "CONFIG", cfg); src.String() != want || src.Kind != tt.kind {
				t.Errorf("DockerCredentialSource() = %q (%s), want %q (%s)", src, src.Kind, want, tt.kind)
			}
		})
	}

	advice := map[CredentialKind]string{
		CredentialsRegistryBlock: "fix the username and password of the registry block for r.example",
		CredentialsHelper:        "check the helper (echo r.example | docker-credential-pass get shows what it returns), or log in again with ferry login r.example (or docker login)",
		CredentialsDockerConfig:  "log in again with ferry login r.example (or docker login)",
		CredentialsNone:          "log in with ferry login r.example (or docker login), configure a credential helper in the docker config, or (Terraform) add a registry block for r.example",
	}
	for kind, want := range advice {
		src := CredentialSource{Kind: kind, Host: "r.example", Helper: "docker-credential-pass", HelperFrom: "credsStore", ConfigFile: "/c.json"}
		if got := src.Advice(); got != want {
			t.Errorf("Advice() of %s = %q, want %q", kind, got, want)
		}
	}
	none := &CredentialError{Source: CredentialSource{Kind: CredentialsNone, Host: "r.example", ConfigFile: "/c.json"}, Err: errors.New("unauthorized"), Refused: true}
	if want := "unauthorized; no credentials (/c.json has none for r.example); log in with ferry login r.example (or docker login), configure a credential helper in the docker config, or (Terraform) add a registry block for r.example"; none.Error() != want {
		t.Errorf("CredentialError.Error() = %q, want %q", none.Error(), want)
	}
	block := CredentialSource{Kind: CredentialsRegistryBlock, Host: "r.example"}
	refused := &CredentialError{Source: block, Err: errors.New("inspect r.example/a:1: unauthorized: registry access unauthorized"), Refused: true}
	if want := "inspect r.example/a:1: unauthorized: registry access unauthorized; credentials from the provider's registry block for r.example; fix the username and password of the registry block for r.example"; refused.Error() != want {
		t.Errorf("CredentialError.Error() = %q, want %q", refused.Error(), want)
	}
}

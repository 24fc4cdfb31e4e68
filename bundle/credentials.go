package bundle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"oras.land/oras-go/v2/registry/remote/auth"
)

// CredentialKind is the kind of place a registry credential comes from.
type CredentialKind string

// The credential sources. The provider's registry blocks come first; every other registry's
// credential comes from the docker credential store, where a credHelpers entry for the host wins
// over credsStore, which wins over the auths entries of config.json (what `ferry login` and
// `docker login` write when no helper is configured).
const (
	CredentialsRegistryBlock CredentialKind = "registry block"    // the provider's registry block for the host
	CredentialsHelper        CredentialKind = "credential helper" // a docker credential helper (credHelpers, credsStore or the platform default)
	CredentialsDockerConfig  CredentialKind = "docker config"     // an auths entry of the docker config file
	CredentialsNone          CredentialKind = "none"              // nothing has a credential for the host: anonymous
)

// CredentialSource says where the credential for a registry host comes from, so that an
// authentication failure can name it and say what to do. It holds no secret.
type CredentialSource struct {
	Kind CredentialKind
	// Host is the registry host, host[:port].
	Host string
	// ConfigFile is the docker config file consulted (docker sources).
	ConfigFile string
	// Helper is the credential helper's executable, docker-credential-NAME, and HelperFrom the
	// config field that names it: "credHelpers", "credsStore" or "" for the platform default.
	Helper     string
	HelperFrom string
}

// String names the source, e.g. `credential helper docker-credential-pass (credsStore of
// /home/ci/.docker/config.json)`.
func (s CredentialSource) String() string {
	switch s.Kind {
	case CredentialsRegistryBlock:
		return "the provider's registry block for " + s.Host
	case CredentialsHelper:
		switch s.HelperFrom {
		case "credHelpers":
			return fmt.Sprintf("credential helper %s (credHelpers entry for %s in %s)", s.Helper, s.Host, s.ConfigFile)
		case "credsStore":
			return fmt.Sprintf("credential helper %s (credsStore of %s)", s.Helper, s.ConfigFile)
		}
		return fmt.Sprintf("credential helper %s (the platform default; %s configures none)", s.Helper, s.ConfigFile)
	case CredentialsDockerConfig:
		return fmt.Sprintf("the auths entry for %s in %s (written by ferry login or docker login)", s.Host, s.ConfigFile)
	}
	if s.ConfigFile == "" {
		return "no credentials for " + s.Host
	}
	return fmt.Sprintf("no credentials (%s has none for %s)", s.ConfigFile, s.Host)
}

// Advice says what to do when the source fails or the registry refuses its credential.
func (s CredentialSource) Advice() string {
	login := "ferry login " + s.Host + " (or docker login)"
	switch s.Kind {
	case CredentialsRegistryBlock:
		return "fix the username and password of the registry block for " + s.Host
	case CredentialsHelper:
		return fmt.Sprintf("check the helper (echo %s | %s get shows what it returns), or log in again with %s", s.Host, s.Helper, login)
	case CredentialsDockerConfig:
		return "log in again with " + login
	}
	return "log in with " + login + ", configure a credential helper in the docker config, or (Terraform) add a registry block for " + s.Host
}

// CredentialError is an authentication failure of [Push], [Inspect], [Pull] or [ResolveImages]
// with the credential source that was used: the registry refused its credential (401/403, or
// none was given), or the source failed to produce one (a credential helper that exits with an
// error). The message names the source and says what to do. Err matches [ErrUnauthorized] (or
// [ErrImageUnauthorized]).
type CredentialError struct {
	Source CredentialSource
	Err    error
	// Refused is true when the registry refused the credential, false when the source failed.
	Refused bool
}

func (e *CredentialError) Error() string {
	if e.Refused && e.Source.Kind == CredentialsNone {
		return fmt.Sprintf("%v; %s; %s", e.Err, e.Source, e.Source.Advice())
	}
	if e.Refused {
		return fmt.Sprintf("%v; credentials from %s; %s", e.Err, e.Source, e.Source.Advice())
	}
	return fmt.Sprintf("%v; %s", e.Err, e.Source.Advice()) // Err names the source that failed
}

// Unwrap returns the cause.
func (e *CredentialError) Unwrap() error { return e.Err }

// lookupError is a credential source failing to produce a credential.
type lookupError struct {
	source CredentialSource
	err    error
}

func (e *lookupError) Error() string {
	return fmt.Sprintf("%s failed for %s: %v", e.source, e.source.Host, e.err)
}

func (e *lookupError) Unwrap() error { return e.err }

// sourcedCredentials returns cred with its failures naming the source of the host.
func sourcedCredentials(cred auth.CredentialFunc, source func(host string) CredentialSource) auth.CredentialFunc {
	return func(ctx context.Context, host string) (auth.Credential, error) {
		c, err := cred(ctx, host)
		if err != nil {
			return c, &lookupError{source: source(host), err: err}
		}
		return c, nil
	}
}

// DockerConfigPath returns the docker config file the docker credential store reads:
// $DOCKER_CONFIG/config.json, else ~/.docker/config.json.
func DockerConfigPath() (string, error) {
	if dir := os.Getenv("DOCKER_CONFIG"); dir != "" {
		return filepath.Join(dir, "config.json"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("docker config: %w", err)
	}
	return filepath.Join(home, ".docker", "config.json"), nil
}

// DockerCredentialSource says where the docker credential store ([DockerCredentialStore]) looks
// for the credential of host, reading the docker config file as it does.
func DockerCredentialSource(host string) CredentialSource {
	src := CredentialSource{Kind: CredentialsNone, Host: host}
	path, err := DockerConfigPath()
	if err != nil {
		return src
	}
	src.ConfigFile = path
	var cfg struct {
		Auths       map[string]json.RawMessage `json:"auths"`
		CredHelpers map[string]string          `json:"credHelpers"`
		CredsStore  string                     `json:"credsStore"`
	}
	data, err := os.ReadFile(path)
	if err == nil {
		_ = json.Unmarshal(data, &cfg) // the store itself reports a malformed file
	}
	helper := func(name, from string) CredentialSource {
		src.Kind, src.Helper, src.HelperFrom = CredentialsHelper, "docker-credential-"+name, from
		return src
	}
	if h := cfg.CredHelpers[host]; h != "" {
		return helper(h, "credHelpers")
	}
	if cfg.CredsStore != "" {
		return helper(cfg.CredsStore, "credsStore")
	}
	for addr := range cfg.Auths {
		if addr == host || authHost(addr) == host {
			src.Kind = CredentialsDockerConfig
			return src
		}
	}
	if len(cfg.Auths) == 0 && len(cfg.CredHelpers) == 0 {
		// As oras-go's DetectDefaultNativeStore: the platform's helper, when it is installed.
		if name := defaultHelper(); name != "" {
			return helper(name, "")
		}
	}
	return src
}

// authHost is the host of a legacy auths key such as "https://index.docker.io/v1/".
func authHost(addr string) string {
	addr = strings.TrimPrefix(strings.TrimPrefix(addr, "https://"), "http://")
	host, _, _ := strings.Cut(addr, "/")
	return host
}

// defaultHelper is the suffix of the platform's default credential helper when it is installed
// (docker's defaults on Linux: pass when the pass command exists, else secretservice).
func defaultHelper() string {
	name := "secretservice"
	if _, err := exec.LookPath("pass"); err == nil {
		name = "pass"
	}
	switch runtime.GOOS {
	case "darwin":
		name = "osxkeychain"
	case "windows":
		name = "wincred"
	}
	if _, err := exec.LookPath("docker-credential-" + name); err != nil {
		return ""
	}
	return name
}

// wrap is class.wrap with, for an authentication failure, the credential source of host and what
// to do.
func (c *Client) wrap(class registryClass, host, what string, err error) error {
	wrapped := class.wrap(what, err)
	if c.source == nil || !errors.Is(wrapped, class.unauthorized) {
		return wrapped
	}
	var le *lookupError
	if errors.As(err, &le) {
		return &CredentialError{Source: le.source, Err: wrapped}
	}
	return &CredentialError{Source: c.source(host), Err: wrapped, Refused: true}
}

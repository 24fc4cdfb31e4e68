// Package kube turns ferry's Kubernetes connection settings into a client configuration, with the
// attribute and environment-variable names of the hashicorp/kubernetes Terraform provider, and
// makes the configuration's authentication failures name their credential source ([Source]). It
// is shared by the provider and the CLI and never contacts a cluster itself.
package kube

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// ErrNotConfigured is returned by [Options.RESTConfig] when no cluster is configured at all.
var ErrNotConfigured = errors.New("no Kubernetes cluster configured")

// ErrInvalid is returned (wrapped, naming the attribute) for settings that cannot work.
var ErrInvalid = errors.New("invalid Kubernetes settings")

// Exec is a client-go credential plugin.
type Exec struct {
	APIVersion string
	Command    string
	Args       []string
	Env        map[string]string
}

// Options are the connection settings. Empty fields are unset.
type Options struct {
	ConfigPath           string
	ConfigPaths          []string
	ConfigContext        string
	Host                 string
	Token                string
	ClientCertificate    string // PEM
	ClientKey            string // PEM
	ClusterCACertificate string // PEM
	Insecure             *bool
	Exec                 *Exec

	// TokenFrom names, for error messages, the setting Token came from: an attribute or flag.
	// Default "kubernetes.token"; [Options.WithEnv] sets "$KUBE_TOKEN" when it takes the token
	// from there.
	TokenFrom string

	// RequestTimeout bounds each attempt of a request to the API server, until its response is
	// read (for a watch, until its response headers arrive). Default DefaultRequestTimeout (30s).
	RequestTimeout time.Duration
	// Attempts is how many times a request is tried when the API server cannot be dialled, or,
	// for a read, does not answer within RequestTimeout; the last failure is an
	// [*UnreachableError]. Default DefaultAttempts (5).
	Attempts int

	// Names maps attribute names (config_path, config_paths, config_context, host, insecure,
	// client_certificate, client_key, cluster_ca_certificate, exec.command, ...) to what errors
	// call them instead, so that the CLI names its flags and variables; unmapped attributes keep
	// their names.
	Names map[string]string

	certFromEnv bool // ClientCertificate came from KUBE_CLIENT_CERT_DATA
}

// Environment variables read by [Options.WithEnv], as in the hashicorp/kubernetes provider.
const (
	EnvConfigPath           = "KUBE_CONFIG_PATH"
	EnvConfigPaths          = "KUBE_CONFIG_PATHS"
	EnvContext              = "KUBE_CTX"
	EnvHost                 = "KUBE_HOST"
	EnvToken                = "KUBE_TOKEN"
	EnvClientCertificate    = "KUBE_CLIENT_CERT_DATA"
	EnvClientKey            = "KUBE_CLIENT_KEY_DATA"
	EnvClusterCACertificate = "KUBE_CLUSTER_CA_CERT_DATA"
	EnvInsecure             = "KUBE_INSECURE"
)

// WithEnv returns o with every unset field taken from the environment (getenv), so attributes win
// over environment variables, which win over what a kubeconfig says.
func (o Options) WithEnv(getenv func(string) string) (Options, error) {
	set := func(dst *string, env string) {
		if *dst == "" {
			*dst = getenv(env)
		}
	}
	if o.Token == "" && getenv(EnvToken) != "" {
		o.TokenFrom = "$" + EnvToken
	}
	if o.ClientCertificate == "" && getenv(EnvClientCertificate) != "" {
		o.certFromEnv = true
	}
	set(&o.ConfigPath, EnvConfigPath)
	set(&o.ConfigContext, EnvContext)
	set(&o.Host, EnvHost)
	set(&o.Token, EnvToken)
	set(&o.ClientCertificate, EnvClientCertificate)
	set(&o.ClientKey, EnvClientKey)
	set(&o.ClusterCACertificate, EnvClusterCACertificate)
	if len(o.ConfigPaths) == 0 {
		if v := getenv(EnvConfigPaths); v != "" {
			o.ConfigPaths = filepath.SplitList(v)
		}
	}
	if o.Insecure == nil {
		if v := getenv(EnvInsecure); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return o, fmt.Errorf("%s=%q: %w: use true or false", EnvInsecure, v, ErrInvalid)
			}
			o.Insecure = &b
		}
	}
	return o, nil
}

// Validate checks the settings without contacting anything and names the attribute to fix.
func (o Options) Validate() error {
	var errs []error
	bad := func(attr, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %w: %s", o.name(attr), ErrInvalid, fmt.Sprintf(format, args...)))
	}
	for i, p := range o.paths() {
		attr := "config_path"
		if o.ConfigPath == "" || i > 0 {
			attr = fmt.Sprintf("config_paths[%d]", i-boolInt(o.ConfigPath != ""))
		}
		if _, err := os.Stat(expandHome(p)); err != nil {
			bad(attr, "kubeconfig %q cannot be read: %v", p, err)
		}
	}
	if (o.ClientCertificate == "") != (o.ClientKey == "") {
		if o.ClientKey == "" {
			bad("client_key", "%s is set without %s; set both or neither", o.name("client_certificate"), o.name("client_key"))
		} else {
			bad("client_certificate", "%s is set without %s; set both or neither", o.name("client_key"), o.name("client_certificate"))
		}
	}
	if o.Host != "" && !strings.HasPrefix(o.Host, "https://") && !strings.HasPrefix(o.Host, "http://") {
		bad("host", "%q must start with https:// (or http://)", o.Host)
	}
	if o.Insecure != nil && *o.Insecure && o.ClusterCACertificate != "" {
		insecure := "insecure = true"
		if n, ok := o.Names["insecure"]; ok {
			insecure = n
		}
		bad("insecure", "%s cannot be combined with %s; remove one", insecure, o.name("cluster_ca_certificate"))
	}
	if o.Exec != nil {
		if o.Exec.Command == "" {
			bad("exec.command", "must be set")
		}
		if o.Exec.APIVersion == "" {
			bad("exec.api_version", "must be set, e.g. client.authentication.k8s.io/v1beta1")
		}
	}
	if o.RequestTimeout < 0 {
		bad("request_timeout", "%s is negative; use a positive duration, or 0 for the default of %s", o.RequestTimeout, ShortDuration(DefaultRequestTimeout))
	}
	if o.Attempts < 0 {
		bad("attempts", "%d is negative; use 1 for a single attempt, or 0 for the default of %d", o.Attempts, DefaultAttempts)
	}
	return errors.Join(errs...)
}

// name is what errors call attribute attr (Names); an indexed attribute, config_paths[1], is
// named after its list.
func (o Options) name(attr string) string {
	if n, ok := o.Names[attr]; ok {
		return n
	}
	if list, index, ok := strings.Cut(attr, "["); ok {
		if n, ok := o.Names[list]; ok {
			return n + "[" + index
		}
	}
	return attr
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (o Options) paths() []string {
	var ps []string
	if o.ConfigPath != "" {
		ps = append(ps, o.ConfigPath)
	}
	return append(ps, o.ConfigPaths...)
}

func expandHome(p string) string {
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, rest)
		}
	}
	return p
}

// RESTConfig builds the client configuration: the kubeconfig files (when given) with the explicit
// settings laid over them, or the explicit settings alone, or the in-cluster service account when
// running in a Pod and nothing else is set. It reads local files only. Authentication failures of
// the configuration name its credential source ([Source]) and say what to do: an exec plugin that
// fails is an [*AuthError], and the message of a 401 or 403 answer names the source. Each request
// attempt is bounded by RequestTimeout, and a request the API server never got (or a read it did
// not answer) is tried Attempts times before it fails with an [*UnreachableError].
func (o Options) RESTConfig() (*rest.Config, error) {
	cfg, src, err := o.restConfig()
	if err != nil {
		return nil, err
	}
	if cfg, err = withSource(cfg, src); err != nil {
		return nil, err
	}
	timeout, attempts := o.RequestTimeout, o.Attempts
	if timeout <= 0 {
		timeout = DefaultRequestTimeout
	}
	if attempts <= 0 {
		attempts = DefaultAttempts
	}
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return &retryTransport{next: rt, timeout: timeout, attempts: attempts}
	})
	return cfg, nil
}

func (o Options) restConfig() (*rest.Config, Source, error) {
	if err := o.Validate(); err != nil {
		return nil, Source{}, err
	}
	overrides := &clientcmd.ConfigOverrides{CurrentContext: o.ConfigContext}
	if o.Host != "" {
		overrides.ClusterInfo.Server = o.Host
	}
	if o.ClusterCACertificate != "" {
		overrides.ClusterInfo.CertificateAuthorityData = []byte(o.ClusterCACertificate)
	}
	if o.Insecure != nil {
		overrides.ClusterInfo.InsecureSkipTLSVerify = *o.Insecure
	}
	if o.Token != "" {
		overrides.AuthInfo.Token = o.Token
	}
	if o.ClientCertificate != "" {
		overrides.AuthInfo.ClientCertificateData = []byte(o.ClientCertificate)
		overrides.AuthInfo.ClientKeyData = []byte(o.ClientKey)
	}
	if o.Exec != nil {
		var env []clientcmdapi.ExecEnvVar
		for k, v := range o.Exec.Env {
			env = append(env, clientcmdapi.ExecEnvVar{Name: k, Value: v})
		}
		overrides.AuthInfo.Exec = &clientcmdapi.ExecConfig{
			APIVersion: o.Exec.APIVersion, Command: o.Exec.Command, Args: o.Exec.Args, Env: env,
			InteractiveMode: clientcmdapi.NeverExecInteractiveMode,
		}
	}
	paths := o.paths()
	if len(paths) == 0 {
		if o.Host == "" {
			if os.Getenv("KUBERNETES_SERVICE_HOST") != "" {
				cfg, src, err := inClusterConfig()
				if err != nil {
					return nil, src, fmt.Errorf("in-cluster configuration: %w", err)
				}
				return cfg, src, nil
			}
			path, host := "kubernetes.config_path", "kubernetes.host"
			if n, ok := o.Names["config_path"]; ok {
				path = n
			}
			if n, ok := o.Names["host"]; ok {
				host = n
			}
			return nil, Source{}, fmt.Errorf("%w: set %s or %s (or %s / %s)", ErrNotConfigured, path, host, EnvConfigPath, EnvHost)
		}
		cfg, err := clientcmd.NewDefaultClientConfig(*clientcmdapi.NewConfig(), overrides).ClientConfig()
		if err != nil {
			return nil, Source{}, fmt.Errorf("kubernetes: %w", err)
		}
		return cfg, o.source(cfg, Source{}), nil
	}
	rules := &clientcmd.ClientConfigLoadingRules{Precedence: make([]string, 0, len(paths))}
	for _, p := range paths {
		rules.Precedence = append(rules.Precedence, expandHome(p))
	}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
	cfg, err := cc.ClientConfig()
	if err != nil {
		if o.ConfigContext != "" && strings.Contains(err.Error(), "context was not found") {
			return nil, Source{}, fmt.Errorf("%s: %w: context %q is not in %s", o.name("config_context"), ErrInvalid, o.ConfigContext, strings.Join(paths, ", "))
		}
		return nil, Source{}, fmt.Errorf("kubeconfig %s: %w", strings.Join(paths, ", "), err)
	}
	user := Source{Kind: SourceKubeconfig, Kubeconfig: paths, Context: o.ConfigContext}
	if raw, err := cc.RawConfig(); err == nil {
		if user.Context == "" {
			user.Context = raw.CurrentContext
		}
		if c := raw.Contexts[user.Context]; c != nil {
			user.User = c.AuthInfo
		}
	}
	return cfg, o.source(cfg, user), nil
}

// source says which credentials cfg, built from o and (when one was read) the kubeconfig user,
// authenticates with. client-go lets a token or certificate, explicit or the kubeconfig user's,
// win over an exec plugin.
func (o Options) source(cfg *rest.Config, user Source) Source {
	userCreds := cfg.BearerToken != "" || cfg.BearerTokenFile != "" || len(cfg.CertData) > 0 || cfg.CertFile != "" ||
		cfg.Username != "" || cfg.AuthProvider != nil
	switch {
	case o.Token != "":
		from := o.TokenFrom
		if from == "" {
			from = "kubernetes.token"
		}
		return Source{Kind: SourceToken, Setting: from}
	case o.ClientCertificate != "":
		from := "kubernetes.client_certificate"
		if o.certFromEnv {
			from = "$" + EnvClientCertificate
		}
		return Source{Kind: SourceClientCertificate, Setting: from}
	case user.Kind != "" && userCreds:
		return user
	case o.Exec != nil:
		return Source{Kind: SourceExec, Setting: "kubernetes.exec", Command: o.Exec.Command, Args: o.Exec.Args}
	case user.Kind != "" && cfg.ExecProvider != nil:
		user.Kind, user.Command, user.Args = SourceExec, cfg.ExecProvider.Command, cfg.ExecProvider.Args
		return user
	}
	user.Kind = SourceNone
	return user
}

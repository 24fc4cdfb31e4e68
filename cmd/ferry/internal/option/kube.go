package option

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ferry-dev/terraform-provider-ferry/internal/argocd"
	"github.com/ferry-dev/terraform-provider-ferry/internal/kube"
)

// Kube is the cluster flag group: the cluster where Argo CD runs. Unset flags fall back to the
// KUBE_* environment variables of the Terraform provider, then to $KUBECONFIG / ~/.kube/config,
// then, in a Pod, to its service account. Authentication failures name the source used
// (kube.Source).
type Kube struct {
	Kubeconfig string
	Context    string
	Server     string
	Insecure   bool
	Namespace  string
	// RequestTimeout and Retries bound every API request: an unreachable cluster is reported
	// within about RequestTimeout × Retries plus the backoff between them (kube.Options).
	RequestTimeout time.Duration
	Retries        int

	token  Secret // --token, --token-stdin, $KUBE_TOKEN
	bearer string // the token Parse found, if any
}

// ApplyFlags registers the flags.
func (k *Kube) ApplyFlags(fs *pflag.FlagSet) {
	fs.StringVar(&k.Kubeconfig, "kubeconfig", "", "kubeconfig file (default $KUBE_CONFIG_PATH, $KUBECONFIG, ~/.kube/config)")
	fs.StringVar(&k.Context, "context", "", "kubeconfig context")
	fs.StringVar(&k.Server, "server", "", "API server URL, overriding the kubeconfig")
	k.token = Secret{Name: "token", Env: kube.EnvToken, What: "bearer token of the API server"}
	k.token.ApplyFlags(fs)
	fs.BoolVar(&k.Insecure, "insecure-skip-tls-verify", false, "skip TLS verification of the API server")
	fs.StringVar(&k.Namespace, "argocd-namespace", "argocd", "namespace Argo CD runs in")
	fs.DurationVar(&k.RequestTimeout, "request-timeout", kube.DefaultRequestTimeout, "how long to wait for the API server to answer a request")
	fs.IntVar(&k.Retries, "retries", kube.DefaultAttempts, "attempts per API request when the cluster is unreachable or times out")
}

// Parse validates the flags and reads the token (--token-stdin reads standard input).
func (k *Kube) Parse(cmd *cobra.Command) error {
	if k.RequestTimeout <= 0 {
		return Usagef("--request-timeout DURATION", "use a positive duration, e.g. 30s", fmt.Errorf("--request-timeout %v is not positive", k.RequestTimeout))
	}
	if k.Retries < 1 {
		return Usagef("--retries N", "use 1 for a single attempt", fmt.Errorf("--retries %d is less than 1", k.Retries))
	}
	var err error
	k.bearer, err = k.token.Value(cmd)
	return err
}

// Client returns an Argo CD client for the flags.
func (k *Kube) Client() (*argocd.Client, error) {
	o := k.options()
	if k.Insecure {
		t := true
		o.Insecure = &t
	}
	o, err := o.WithEnv(os.Getenv)
	if err != nil {
		return nil, err
	}
	if o.ConfigPath == "" && len(o.ConfigPaths) == 0 && o.Host == "" {
		// Like kubectl: $KUBECONFIG, then ~/.kube/config.
		if env := os.Getenv("KUBECONFIG"); env != "" {
			o.ConfigPaths = filepath.SplitList(env)
		} else if home, err := os.UserHomeDir(); err == nil {
			if _, err := os.Stat(home + "/.kube/config"); err == nil {
				o.ConfigPath = home + "/.kube/config"
			}
		}
	}
	cfg, err := o.RESTConfig()
	var authErr *kube.AuthError
	if errors.As(err, &authErr) {
		// The message names the credential source and what to do.
		return nil, &Error{Err: err, Code: ExitPermanent}
	}
	if err != nil {
		return nil, Usagef("", "pass --kubeconfig, or --server and --token-stdin, or set KUBE_CONFIG_PATH (or KUBE_HOST and KUBE_TOKEN)", err)
	}
	return argocd.New(cfg, k.Namespace)
}

// options are the flags as kube.Options, before the environment is read.
func (k *Kube) options() kube.Options {
	return kube.Options{ConfigPath: k.Kubeconfig, ConfigContext: k.Context, Host: k.Server, Token: k.bearer, TokenFrom: k.tokenFrom(),
		RequestTimeout: k.RequestTimeout, Attempts: k.Retries, Names: k.names()}
}

// names maps the provider's attribute names, which kube's errors use, to the flag or variable
// each setting comes from on the command line.
func (k *Kube) names() map[string]string {
	flagOr := func(set bool, flag, env string) string {
		if set {
			return flag
		}
		return "$" + env
	}
	paths := "$" + kube.EnvConfigPaths
	if os.Getenv(kube.EnvConfigPaths) == "" {
		paths = "$KUBECONFIG"
	}
	return map[string]string{
		"config_path":            flagOr(k.Kubeconfig != "" || os.Getenv(kube.EnvConfigPath) == "", "--kubeconfig", kube.EnvConfigPath),
		"config_paths":           paths,
		"config_context":         flagOr(k.Context != "" || os.Getenv(kube.EnvContext) == "", "--context", kube.EnvContext),
		"host":                   flagOr(k.Server != "" || os.Getenv(kube.EnvHost) == "", "--server", kube.EnvHost),
		"insecure":               flagOr(k.Insecure || os.Getenv(kube.EnvInsecure) == "", "--insecure-skip-tls-verify", kube.EnvInsecure),
		"client_certificate":     "$" + kube.EnvClientCertificate,
		"client_key":             "$" + kube.EnvClientKey,
		"cluster_ca_certificate": "$" + kube.EnvClusterCACertificate,
		"request_timeout":        "--request-timeout",
		"attempts":               "--retries",
	}
}

// Hint says, from the cause of err, what is wrong with the connection to the cluster and which
// flag to look at, or "" when err is not a connection failure.
func (k *Kube) Hint(err error) string {
	return k.options().Hint(err)
}

// APIError gives err, of an API call to the cluster, its exit code: permanent (2) when retrying
// cannot help (argocd.PermanentAPIError: refused credentials, forbidden, a certificate that does
// not verify, …; the message says what to do) and transient (3) otherwise — the cluster stayed
// unreachable through --retries attempts, or answered 5xx — with a hint from the cause.
func (k *Kube) APIError(err error) error {
	if argocd.PermanentAPIError(err) {
		return &Error{Err: err, Code: ExitPermanent}
	}
	rec := k.Hint(err)
	if rec == "" {
		rec = "check that the cluster is reachable (--kubeconfig, --context or --server) and the network"
	}
	return &Error{Err: err, Code: ExitTransient, Recommendation: strings.ToUpper(rec[:1]) + rec[1:] + "."}
}

// tokenFrom names the flag or variable the token came from, for error messages.
func (k *Kube) tokenFrom() string {
	switch {
	case k.bearer == "":
		return ""
	case k.token.stdin:
		return "--" + k.token.stdinFlag()
	case k.token.value != "":
		return "--" + k.token.Name
	}
	return "$" + k.token.Env
}

package option

import (
	"errors"
	"os"
	"path/filepath"

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
}

// Parse validates the flags and reads the token (--token-stdin reads standard input).
func (k *Kube) Parse(cmd *cobra.Command) error {
	var err error
	k.bearer, err = k.token.Value(cmd)
	return err
}

// Client returns an Argo CD client for the flags.
func (k *Kube) Client() (*argocd.Client, error) {
	o := kube.Options{ConfigPath: k.Kubeconfig, ConfigContext: k.Context, Host: k.Server, Token: k.bearer, TokenFrom: k.tokenFrom()}
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

package kube

import (
	"fmt"
	"strings"
)

// SourceKind is the kind of credential a configuration authenticates with.
type SourceKind string

// The credential sources, in the order [Options.RESTConfig] considers them: explicit settings
// (attributes, flags, KUBE_* variables) win over the kubeconfig user, and the in-cluster service
// account is used only when neither a kubeconfig nor a host is configured.
const (
	SourceToken             SourceKind = "token"              // an explicit bearer token (Options.Token)
	SourceClientCertificate SourceKind = "client certificate" // an explicit client certificate
	SourceExec              SourceKind = "exec plugin"        // kubernetes.exec, or the exec section of the kubeconfig user
	SourceKubeconfig        SourceKind = "kubeconfig"         // the token, certificate or auth provider of the kubeconfig user
	SourceInCluster         SourceKind = "in-cluster"         // the Pod's service account token
	SourceNone              SourceKind = "none"               // no credentials: requests are anonymous
)

// Source says where the credentials of a client configuration come from, so that an
// authentication failure can name them and say what to do. It holds no secret.
type Source struct {
	Kind SourceKind
	// Setting names the attribute, flag or environment variable of an explicit token or
	// certificate, or "kubernetes.exec" for the provider's exec block.
	Setting string
	// Kubeconfig, Context and User name the kubeconfig files, context and user, when the
	// credentials come from a kubeconfig.
	Kubeconfig []string
	Context    string
	User       string
	// Command and Args are the exec plugin's.
	Command string
	Args    []string
	// TokenFile is the service account token file, ServiceAccount "namespace/name" when the
	// token says so (in-cluster).
	TokenFile      string
	ServiceAccount string
}

// String names the source, e.g. `exec plugin "aws" (kubernetes.exec)` or `user "ci" of
// context "prod" in kubeconfig /home/ci/.kube/config`.
func (s Source) String() string {
	switch s.Kind {
	case SourceToken:
		return "bearer token from " + s.Setting
	case SourceClientCertificate:
		return "client certificate from " + s.Setting
	case SourceExec:
		if s.Setting != "" {
			return fmt.Sprintf("exec plugin %q (%s)", s.Command, s.Setting)
		}
		return fmt.Sprintf("exec plugin %q of %s", s.Command, s.kubeconfigUser())
	case SourceKubeconfig:
		return s.kubeconfigUser()
	case SourceInCluster:
		sa := "in-cluster service account"
		if s.ServiceAccount != "" {
			sa += " " + s.ServiceAccount
		}
		return sa + " (token file " + s.TokenFile + ")"
	}
	if len(s.Kubeconfig) > 0 {
		return "no credentials (anonymous requests; " + s.kubeconfigUser() + " has none)"
	}
	return "no credentials (anonymous requests)"
}

func (s Source) kubeconfigUser() string {
	return fmt.Sprintf("user %q of context %q in kubeconfig %s", s.User, s.Context, strings.Join(s.Kubeconfig, ", "))
}

// Advice says what to do when the API server refuses the credentials (401), or, with
// forbidden, when it accepts them but denies the request (403).
func (s Source) Advice(forbidden bool) string {
	if forbidden {
		switch s.Kind {
		case SourceInCluster:
			return "bind the service account to a Role that may read and write Argo CD's Applications, AppProjects and Secrets in the Argo CD namespace (RoleBinding), or use other credentials"
		default:
			return "grant this identity RBAC access to Argo CD's Applications, AppProjects and Secrets in the Argo CD namespace, or use other credentials"
		}
	}
	switch s.Kind {
	case SourceToken:
		return "the token is wrong or expired: renew it, or unset " + s.Setting + " to use the kubeconfig"
	case SourceClientCertificate:
		return "the certificate is not signed by the cluster's client CA or has expired: renew it"
	case SourceExec:
		cmd := strings.Join(append([]string{s.Command}, s.Args...), " ")
		return "run the plugin by hand (" + cmd + ") and fix what it reports, e.g. log in again"
	case SourceKubeconfig:
		return fmt.Sprintf("renew the credentials of user %q (kubectl --context %s auth whoami shows what the cluster thinks of them), or choose another context", s.User, s.Context)
	case SourceInCluster:
		return "the mounted service account token was refused: check that the Pod's service account exists and that the token is not expired"
	}
	return "configure credentials: a kubeconfig user, a token, a client certificate or an exec plugin"
}

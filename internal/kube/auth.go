package kube

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/rest"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/client-go/transport"
)

// ErrCredentials is returned (wrapped in an [*AuthError]) when credentials cannot be obtained: an
// exec plugin that fails, a service account token that cannot be read.
var ErrCredentials = errors.New("kubernetes credentials unavailable")

// AuthError is a failure to obtain credentials from a [Source]. Its message names the source and
// says what to do; for an exec plugin it includes what the plugin wrote to standard error.
type AuthError struct {
	Source Source
	Err    error
	// Stderr is the exec plugin's standard error, trimmed and bounded.
	Stderr string
}

func (e *AuthError) Error() string {
	msg := fmt.Sprintf("%v: %s: %v", ErrCredentials, e.Source, e.Err)
	if e.Stderr != "" {
		msg += fmt.Sprintf("; the plugin wrote: %q", e.Stderr)
	}
	if e.Source.Kind == SourceInCluster {
		return msg + "; check that the Pod mounts its service account token (automountServiceAccountToken is not false) and that ferry's user may read it"
	}
	return msg + "; " + e.Source.Advice(false)
}

// Unwrap returns ErrCredentials and the cause.
func (e *AuthError) Unwrap() []error { return []error{ErrCredentials, e.Err} }

// serviceAccountDir is where Kubernetes mounts a Pod's service account token, CA and namespace
// (rest.InClusterConfig reads the same fixed path). Tests point it at a directory of their own.
var serviceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"

// inClusterConfig is rest.InClusterConfig with the service account directory as a seam: the API
// server from KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT, its CA from ca.crt, and the
// token from the file token, re-read with client-go's file token source every minute and after
// the API server refuses it (401), so the kubelet's rotation of projected tokens is picked up.
func inClusterConfig() (*rest.Config, Source, error) {
	tokenFile := filepath.Join(serviceAccountDir, "token")
	src := Source{Kind: SourceInCluster, TokenFile: tokenFile}
	host, port := os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")
	if host == "" || port == "" {
		return nil, src, fmt.Errorf("%w: in-cluster configuration needs KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT (set in every Pod)", ErrNotConfigured)
	}
	token, err := os.ReadFile(tokenFile)
	if err == nil && len(bytes.TrimSpace(token)) == 0 {
		err = errors.New("the token file is empty")
	}
	if err != nil {
		return nil, src, &AuthError{Source: src, Err: err}
	}
	src.ServiceAccount = serviceAccountOf(string(token))
	caFile := filepath.Join(serviceAccountDir, "ca.crt")
	if _, err := os.Stat(caFile); err != nil {
		return nil, src, &AuthError{Source: src, Err: fmt.Errorf("CA of the API server: %w", err)}
	}
	return &rest.Config{
		Host:            "https://" + net.JoinHostPort(host, port),
		TLSClientConfig: rest.TLSClientConfig{CAFile: caFile},
		// Unlike BearerTokenFile, a resettable token source also drops the token after a 401.
		WrapTransport: transport.ResettableTokenSourceWrapTransport(transport.NewCachedFileTokenSource(tokenFile)),
	}, src, nil
}

// serviceAccountOf returns "namespace/name" from the subject of a service account token
// (system:serviceaccount:NAMESPACE:NAME), or "" for another token. The token is not verified:
// the name is only for messages.
func serviceAccountOf(token string) string {
	parts := strings.Split(strings.TrimSpace(token), ".")
	if len(parts) != 3 {
		return ""
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var claims struct{ Sub string }
	if json.Unmarshal(payload, &claims) != nil {
		return ""
	}
	rest, ok := strings.CutPrefix(claims.Sub, "system:serviceaccount:")
	if !ok {
		return ""
	}
	ns, name, ok := strings.Cut(rest, ":")
	if !ok {
		return ""
	}
	return ns + "/" + name
}

// withSource returns cfg with its whole transport (TLS, credentials, exec plugin) built and
// wrapped in one that names src when authentication fails. The wrapper has to be outside
// client-go's exec plugin round tripper, which rest.Config.WrapTransport is not, so the
// transport is built here and handed over as rest.Config.Transport.
func withSource(cfg *rest.Config, src Source) (*rest.Config, error) {
	tc, err := cfg.TransportConfig()
	if err != nil {
		return nil, &AuthError{Source: src, Err: err}
	}
	rt, err := transport.New(tc)
	if err != nil {
		return nil, &AuthError{Source: src, Err: err}
	}
	out := rest.CopyConfig(cfg)
	// Everything below is part of rt now; rest.Config refuses TLS settings next to a Transport.
	out.TLSClientConfig = rest.TLSClientConfig{}
	out.BearerToken, out.BearerTokenFile, out.Username, out.Password = "", "", "", ""
	out.ExecProvider, out.AuthProvider, out.AuthConfigPersister = nil, nil, nil
	out.WrapTransport, out.Dial, out.Proxy = nil, nil, nil
	out.Impersonate = rest.ImpersonationConfig{}
	out.Transport = &sourceTransport{next: rt, src: src, exec: cfg.ExecProvider}
	return out, nil
}

// sourceTransport names the credential source in authentication failures: an exec plugin that
// fails becomes an *AuthError with the plugin's message, and the Status of a 401 or 403 answer
// gets the source and what to do appended to its message (its reason and code are unchanged, so
// apierrors.IsUnauthorized and IsForbidden still hold).
type sourceTransport struct {
	next http.RoundTripper
	src  Source
	exec *clientcmdapi.ExecConfig

	once   sync.Once
	stderr string
}

func (t *sourceTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		// client-go's exec round tripper: fmt.Errorf("getting credentials: %v", err).
		if t.exec != nil && strings.Contains(err.Error(), "getting credentials: ") {
			t.once.Do(func() { t.stderr = pluginStderr(req.Context(), t.exec) })
			return nil, &AuthError{Source: t.src, Err: err, Stderr: t.stderr}
		}
		return nil, err
	}
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		forbidden := resp.StatusCode == http.StatusForbidden
		what := "were refused"
		if forbidden {
			what = "were accepted but lack permission"
		}
		annotateStatus(resp, fmt.Sprintf("credentials from %s %s; %s", t.src, what, t.src.Advice(forbidden)))
	}
	return resp, nil
}

// WrappedRoundTripper lets client-go reach the transport underneath (to close idle connections).
func (t *sourceTransport) WrappedRoundTripper() http.RoundTripper { return t.next }

// annotateStatus appends note to the message of the Kubernetes Status in resp's body. Other bodies
// are left as they are.
func annotateStatus(resp *http.Response, note string) {
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	defer func() {
		resp.Body = io.NopCloser(bytes.NewReader(body))
		resp.ContentLength = int64(len(body))
		resp.Header.Del("Content-Length")
	}()
	if err != nil {
		return
	}
	var status map[string]any
	if json.Unmarshal(body, &status) != nil || status["kind"] != "Status" {
		return
	}
	msg, _ := status["message"].(string)
	status["message"] = strings.TrimSpace(msg + " (" + note + ")")
	if b, err := json.Marshal(status); err == nil {
		body = b
	}
}

// pluginStderr runs an exec plugin that just failed once more, as client-go runs it
// (non-interactive, KUBERNETES_EXEC_INFO set), to capture its standard error: client-go passes it
// through to ferry's own standard error, where Terraform does not show it, and keeps only the
// exit code. The output is trimmed to 2 KiB.
func pluginStderr(ctx context.Context, e *clientcmdapi.ExecConfig) string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.Command, e.Args...)
	cmd.Env = os.Environ()
	for _, v := range e.Env {
		cmd.Env = append(cmd.Env, v.Name+"="+v.Value)
	}
	info, _ := json.Marshal(map[string]any{"apiVersion": e.APIVersion, "kind": "ExecCredential", "spec": map[string]any{"interactive": false}})
	cmd.Env = append(cmd.Env, "KUBERNETES_EXEC_INFO="+string(info))
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	_ = cmd.Run() // it failed a moment ago; only its message matters
	out := strings.TrimSpace(stderr.String())
	if len(out) > 2048 {
		out = out[:2048] + "…"
	}
	return out
}

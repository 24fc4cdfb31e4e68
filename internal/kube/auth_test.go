package kube

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/ferry-dev/terraform-provider-ferry/internal/testenv"
)

var (
	selfSubjectReviews = schema.GroupVersionResource{Group: "authentication.k8s.io", Version: "v1", Resource: "selfsubjectreviews"}
	applications       = schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "applications"}
)

// whoami asks the API server who cfg authenticates as (a SelfSubjectReview).
func whoami(cfg *rest.Config) (string, error) {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return "", err
	}
	review := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := dyn.Resource(selfSubjectReviews).Create(ctx, review, metav1.CreateOptions{})
	if err != nil {
		return "", err
	}
	user, _, _ := unstructured.NestedString(res.Object, "status", "userInfo", "username")
	return user, nil
}

func writeFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestExecPlugin authenticates against a real kube-apiserver with a real exec credential plugin
// (client.authentication.k8s.io/v1), configured as kubernetes.exec and as the exec section of a
// kubeconfig user, and checks that a failing plugin's error names the plugin and carries its
// message.
func TestExecPlugin(t *testing.T) {
	c := testenv.StartCluster(t, testenv.ClusterOptions{NoControllerManager: true})
	plugin := testenv.BuildCommand(t, "execcred")
	dir := t.TempDir()
	tokenFile := writeFile(t, filepath.Join(dir, "token"), c.Token)
	log := filepath.Join(dir, "exec.log")
	env := map[string]string{"EXECCRED_TOKEN_FILE": tokenFile, "EXECCRED_LOG": log}

	block := Options{Host: c.Host, ClusterCACertificate: string(c.CAData),
		Exec: &Exec{APIVersion: "client.authentication.k8s.io/v1", Command: plugin, Args: []string{"--cluster", "test"}, Env: env}}
	cfg, err := block.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	if user, err := whoami(cfg); err != nil || user != "ferry-admin" {
		t.Fatalf("whoami() with kubernetes.exec = %q, %v, want ferry-admin", user, err)
	}
	calls, _ := os.ReadFile(log)
	if !strings.Contains(string(calls), `"apiVersion":"client.authentication.k8s.io/v1"`) || !strings.Contains(string(calls), `"interactive":false`) {
		t.Errorf("the plugin saw KUBERNETES_EXEC_INFO %s, want a non-interactive v1 ExecCredential", calls)
	}

	// The same plugin as the exec section of a kubeconfig user.
	kc := clientcmdapi.NewConfig()
	kc.Clusters["test"] = &clientcmdapi.Cluster{Server: c.Host, CertificateAuthorityData: c.CAData}
	kc.AuthInfos["plugin-user"] = &clientcmdapi.AuthInfo{Exec: &clientcmdapi.ExecConfig{
		APIVersion: "client.authentication.k8s.io/v1", Command: plugin, InteractiveMode: clientcmdapi.NeverExecInteractiveMode,
		Env: []clientcmdapi.ExecEnvVar{{Name: "EXECCRED_TOKEN_FILE", Value: tokenFile}},
	}}
	kc.Contexts["plugin"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "plugin-user"}
	failing := *kc.AuthInfos["plugin-user"].Exec
	failing.Env = []clientcmdapi.ExecEnvVar{{Name: "EXECCRED_FAIL", Value: "execcred: the session expired; run execcred login"}}
	kc.AuthInfos["failing-user"] = &clientcmdapi.AuthInfo{Exec: &failing}
	kc.Contexts["failing"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "failing-user"}
	kc.CurrentContext = "plugin"
	kcPath := filepath.Join(dir, "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, kcPath); err != nil {
		t.Fatal(err)
	}
	if cfg, err = (Options{ConfigPath: kcPath}).RESTConfig(); err != nil {
		t.Fatal(err)
	}
	if user, err := whoami(cfg); err != nil || user != "ferry-admin" {
		t.Fatalf("whoami() with a kubeconfig exec user = %q, %v, want ferry-admin", user, err)
	}

	// A plugin that fails: the error names it and carries what it wrote to standard error.
	failingBlock := block
	failingBlock.Exec = &Exec{APIVersion: block.Exec.APIVersion, Command: plugin, Env: map[string]string{"EXECCRED_FAIL": "execcred: the session expired; run execcred login"}}
	for _, tt := range []struct {
		name string
		opts Options
		want string
	}{
		{"kubernetes.exec", failingBlock, fmt.Sprintf("exec plugin %q (kubernetes.exec)", plugin)},
		{"kubeconfig", Options{ConfigPath: kcPath, ConfigContext: "failing"}, fmt.Sprintf("exec plugin %q of user \"failing-user\" of context \"failing\" in kubeconfig %s", plugin, kcPath)},
	} {
		cfg, err := tt.opts.RESTConfig()
		if err != nil {
			t.Fatal(err)
		}
		_, err = whoami(cfg)
		var ae *AuthError
		if !errors.As(err, &ae) || !errors.Is(err, ErrCredentials) || ae.Source.Kind != SourceExec {
			t.Fatalf("whoami() with a failing plugin (%s) = %v, want an *AuthError of the exec plugin", tt.name, err)
		}
		for _, want := range []string{tt.want, "execcred: the session expired; run execcred login", "run the plugin by hand"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("whoami() with a failing plugin (%s) = %v, want it to contain %q", tt.name, err, want)
			}
		}
	}
}

const applicationCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: applications.argoproj.io
spec:
  group: argoproj.io
  names: {kind: Application, listKind: ApplicationList, plural: applications, singular: application}
  scope: Namespaced
  versions:
  - name: v1alpha1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
`

// TestInClusterServiceAccount authenticates as a Pod does: a real service account token from the
// TokenRequest API, the CA and KUBERNETES_SERVICE_HOST/PORT, in a directory standing in for
// /var/run/secrets/kubernetes.io/serviceaccount. The service account may read Applications in
// its namespace only; the token file is re-read after the API server refuses the token.
func TestInClusterServiceAccount(t *testing.T) {
	c := testenv.StartCluster(t, testenv.ClusterOptions{NoControllerManager: true})
	c.Apply(t, applicationCRD)
	c.WaitFor(t, "apiextensions.k8s.io/v1", "CustomResourceDefinition", "", "applications.argoproj.io", func(o *unstructured.Unstructured) bool {
		conds, _, _ := unstructured.NestedSlice(o.Object, "status", "conditions")
		for _, cd := range conds {
			if m, _ := cd.(map[string]any); m["type"] == "Established" && m["status"] == "True" {
				return true
			}
		}
		return false
	}, 30*time.Second)
	ns := c.CreateNamespace(t, "incluster")
	other := c.CreateNamespace(t, "other")
	c.Apply(t, fmt.Sprintf(`apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: read-applications, namespace: %[1]s}
rules:
- apiGroups: [argoproj.io]
  resources: [applications]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: ferry-reads-applications, namespace: %[1]s}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: read-applications}
subjects:
- {kind: ServiceAccount, name: ferry, namespace: %[1]s}
`, ns))
	token := c.ServiceAccountToken(t, ns, "ferry")
	retired := c.ServiceAccountToken(t, ns, "retired")

	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "ca.crt"), string(c.CAData))
	writeFile(t, filepath.Join(dir, "namespace"), ns)
	tokenFile := writeFile(t, filepath.Join(dir, "token"), retired)
	defer func(d string) { serviceAccountDir = d }(serviceAccountDir)
	serviceAccountDir = dir
	u, _ := url.Parse(c.Host)
	t.Setenv("KUBERNETES_SERVICE_HOST", u.Hostname())
	t.Setenv("KUBERNETES_SERVICE_PORT", u.Port())
	for _, k := range []string{EnvConfigPath, EnvConfigPaths, EnvHost, EnvToken, "KUBECONFIG"} {
		t.Setenv(k, "")
	}

	o, err := Options{}.WithEnv(os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := o.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	if user, err := whoami(cfg); err != nil || user != "system:serviceaccount:"+ns+":retired" {
		t.Fatalf("whoami() in cluster = %q, %v, want system:serviceaccount:%s:retired", user, err, ns)
	}
	// The token's service account goes away and the kubelet mounts another one's token: the API
	// server refuses the cached token (401, naming the service account's token file), and the next
	// request reads the new one.
	if err := c.Dynamic(t).Resource(schema.GroupVersionResource{Version: "v1", Resource: "serviceaccounts"}).Namespace(ns).Delete(context.Background(), "retired", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	writeFile(t, tokenFile, token)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		_, err = whoami(cfg)
		if err != nil || time.Now().After(deadline) {
			break
		}
	}
	if !apierrors.IsUnauthorized(err) || !strings.Contains(err.Error(), "credentials from in-cluster service account "+ns+"/retired (token file "+tokenFile+") were refused") {
		t.Fatalf("whoami() with a revoked token = %v, want 401 naming the in-cluster service account and token file", err)
	}
	if user, err := whoami(cfg); err != nil || user != "system:serviceaccount:"+ns+":ferry" {
		t.Fatalf("whoami() after the token was rotated = %q, %v, want system:serviceaccount:%s:ferry", user, err, ns)
	}
	// A fresh configuration names the service account from its token.
	if cfg, err = o.RESTConfig(); err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := dyn.Resource(applications).Namespace(ns).List(ctx, metav1.ListOptions{}); err != nil {
		t.Errorf("list Applications in %s as the service account: %v, want allowed by its RoleBinding", ns, err)
	}
	_, err = dyn.Resource(applications).Namespace(other).List(ctx, metav1.ListOptions{})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "in-cluster service account "+ns+"/ferry") || !strings.Contains(err.Error(), "RoleBinding") {
		t.Errorf("list Applications in %s = %v, want 403 naming the service account and RoleBinding", other, err)
	}

	// An unreadable token file fails before any request, naming the file.
	os.Remove(tokenFile)
	_, err = o.RESTConfig()
	var ae *AuthError
	if !errors.As(err, &ae) || ae.Source.Kind != SourceInCluster || !strings.Contains(err.Error(), tokenFile) {
		t.Errorf("RESTConfig() without a token file = %v, want an *AuthError naming %s", err, tokenFile)
	}
}

func TestSourceMessages(t *testing.T) {
	tests := []struct {
		src         Source
		name        string
		advice      string
		forbiddenTo string
	}{
		{Source{Kind: SourceToken, Setting: "$KUBE_TOKEN"}, "bearer token from $KUBE_TOKEN", "renew it, or unset $KUBE_TOKEN", "grant this identity RBAC access"},
		{Source{Kind: SourceClientCertificate, Setting: "kubernetes.client_certificate"}, "client certificate from kubernetes.client_certificate", "renew it", "grant this identity"},
		{Source{Kind: SourceExec, Setting: "kubernetes.exec", Command: "aws", Args: []string{"eks", "get-token"}}, `exec plugin "aws" (kubernetes.exec)`, "run the plugin by hand (aws eks get-token)", "grant this identity"},
		{Source{Kind: SourceExec, Command: "kubelogin", Kubeconfig: []string{"/k"}, Context: "prod", User: "ci"}, `exec plugin "kubelogin" of user "ci" of context "prod" in kubeconfig /k`, "run the plugin by hand (kubelogin)", "grant this identity"},
		{Source{Kind: SourceKubeconfig, Kubeconfig: []string{"/a", "/b"}, Context: "prod", User: "ci"}, `user "ci" of context "prod" in kubeconfig /a, /b`, `renew the credentials of user "ci" (kubectl --context prod auth whoami`, "grant this identity"},
		{Source{Kind: SourceInCluster, TokenFile: "/sa/token", ServiceAccount: "argocd/ferry"}, "in-cluster service account argocd/ferry (token file /sa/token)", "check that the Pod's service account exists", "RoleBinding"},
		{Source{Kind: SourceNone}, "no credentials (anonymous requests)", "configure credentials", "grant this identity"},
	}
	for _, tt := range tests {
		t.Run(string(tt.src.Kind), func(t *testing.T) {
			if got := tt.src.String(); got != tt.name {
				t.Errorf("String() = %q, want %q", got, tt.name)
			}
			if got := tt.src.Advice(false); !strings.Contains(got, tt.advice) {
				t.Errorf("Advice(false) = %q, want it to contain %q", got, tt.advice)
			}
			if got := tt.src.Advice(true); !strings.Contains(got, tt.forbiddenTo) {
				t.Errorf("Advice(true) = %q, want it to contain %q", got, tt.forbiddenTo)
			}
		})
	}

	e := &AuthError{Source: tests[2].src, Err: errors.New("getting credentials: exec: executable aws failed with exit code 1"), Stderr: "expired"}
	want := `kubernetes credentials unavailable: exec plugin "aws" (kubernetes.exec): getting credentials: exec: executable aws failed with exit code 1; the plugin wrote: "expired"; run the plugin by hand (aws eks get-token) and fix what it reports, e.g. log in again`
	if e.Error() != want {
		t.Errorf("AuthError.Error() = %q, want %q", e.Error(), want)
	}

	resp := &http.Response{StatusCode: 401, Header: http.Header{"Content-Length": {"1"}},
		Body: readCloser(`{"kind":"Status","apiVersion":"v1","status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}`)}
	annotateStatus(resp, "credentials from X were refused")
	if body := readAll(t, resp); !strings.Contains(body, `"message":"Unauthorized (credentials from X were refused)"`) || !strings.Contains(body, `"reason":"Unauthorized"`) || resp.Header.Get("Content-Length") != "" {
		t.Errorf("annotateStatus() body = %s", body)
	}
	resp = &http.Response{StatusCode: 403, Header: http.Header{}, Body: readCloser("forbidden")}
	annotateStatus(resp, "note")
	if body := readAll(t, resp); body != "forbidden" {
		t.Errorf("annotateStatus() of a non-Status body = %q, want it unchanged", body)
	}

	e = &AuthError{Source: Source{Kind: SourceInCluster, TokenFile: "/sa/token"}, Err: errors.New("open /sa/token: permission denied")}
	want = "kubernetes credentials unavailable: in-cluster service account (token file /sa/token): open /sa/token: permission denied; check that the Pod mounts its service account token (automountServiceAccountToken is not false) and that ferry's user may read it"
	if e.Error() != want {
		t.Errorf("AuthError.Error() = %q, want %q", e.Error(), want)
	}

	claims := base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"system:serviceaccount:argocd:ferry"}`))
	if got := serviceAccountOf("x." + claims + ".y\n"); got != "argocd/ferry" {
		t.Errorf("serviceAccountOf(token) = %q, want argocd/ferry", got)
	}
	if got := serviceAccountOf("opaque"); got != "" {
		t.Errorf("serviceAccountOf(opaque) = %q, want empty", got)
	}
}

// TestSourcePrecedence checks which source RESTConfig reports: explicit settings, then the
// kubeconfig user's token or certificate, then an exec plugin, as client-go uses them.
func TestSourcePrecedence(t *testing.T) {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["c"] = &clientcmdapi.Cluster{Server: "https://127.0.0.1:1", InsecureSkipTLSVerify: true}
	kc.AuthInfos["token-user"] = &clientcmdapi.AuthInfo{Token: "t"}
	kc.AuthInfos["exec-user"] = &clientcmdapi.AuthInfo{Exec: &clientcmdapi.ExecConfig{APIVersion: "client.authentication.k8s.io/v1", Command: "kubelogin", Args: []string{"get-token"}, InteractiveMode: clientcmdapi.IfAvailableExecInteractiveMode}}
	kc.AuthInfos["nobody"] = &clientcmdapi.AuthInfo{}
	for _, u := range []string{"token-user", "exec-user", "nobody"} {
		kc.Contexts[u] = &clientcmdapi.Context{Cluster: "c", AuthInfo: u}
	}
	kc.CurrentContext = "token-user"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	block := &Exec{APIVersion: "client.authentication.k8s.io/v1", Command: "aws"}
	tests := []struct {
		opts Options
		want string
	}{
		{Options{ConfigPath: path}, `user "token-user" of context "token-user" in kubeconfig ` + path},
		{Options{ConfigPath: path, ConfigContext: "exec-user"}, `exec plugin "kubelogin" of user "exec-user" of context "exec-user" in kubeconfig ` + path},
		{Options{ConfigPath: path, ConfigContext: "nobody"}, `no credentials (anonymous requests; user "nobody" of context "nobody" in kubeconfig ` + path + ` has none)`},
		{Options{ConfigPath: path, Exec: block}, `user "token-user" of context "token-user" in kubeconfig ` + path},
		{Options{ConfigPath: path, ConfigContext: "exec-user", Exec: block}, `exec plugin "aws" (kubernetes.exec)`},
		{Options{ConfigPath: path, ConfigContext: "exec-user", Token: "x"}, "bearer token from kubernetes.token"},
		{Options{Host: "https://x", Exec: block}, `exec plugin "aws" (kubernetes.exec)`},
		{Options{Host: "https://x"}, "no credentials (anonymous requests)"},
	}
	for _, tt := range tests {
		_, src, err := tt.opts.restConfig()
		if err != nil || src.String() != tt.want {
			t.Errorf("restConfig() source of %+v = %q, %v, want %q", tt.opts, src, err, tt.want)
		}
	}
}

// TestTokenSourceNames checks which source RESTConfig reports for explicit settings.
func TestTokenSourceNames(t *testing.T) {
	env := map[string]string{EnvToken: "t", EnvHost: "https://127.0.0.1:1", EnvInsecure: "true"}
	o, err := Options{}.WithEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	_, src, err := o.restConfig()
	if err != nil || src.String() != "bearer token from $KUBE_TOKEN" {
		t.Errorf("source of KUBE_TOKEN = %q, %v", src, err)
	}
	if _, src, _ := (Options{Host: "https://x", Token: "t"}).restConfig(); src.String() != "bearer token from kubernetes.token" {
		t.Errorf("source of kubernetes.token = %q", src)
	}
	if _, src, _ := (Options{Host: "https://x", Token: "t", TokenFrom: "--token-stdin"}).restConfig(); src.String() != "bearer token from --token-stdin" {
		t.Errorf("source of --token-stdin = %q", src)
	}
}

func readCloser(s string) io.ReadCloser { return io.NopCloser(strings.NewReader(s)) }

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

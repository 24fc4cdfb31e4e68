package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/ferry-dev/terraform-provider-ferry/internal/argocd"
	"github.com/ferry-dev/terraform-provider-ferry/internal/testenv"
)

// TestCLICredentialHelper pushes and inspects against a registry with htpasswd auth, the
// credential coming from a real docker credential helper on PATH (credHelpers; credsStore, filled
// by ferry login), and checks the error of a helper that fails.
func TestCLICredentialHelper(t *testing.T) {
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{Auth: true})
	helper := testenv.BuildCommand(t, "docker-credential-ferrytest")
	dir := writeRelease(t, map[string]string{"ferry.yaml": "apiVersion: ferry.dev/v1\nkind: Bundle\nname: a\nversion: 1\nplugins: p\n", "p/x": "x"})
	// setup returns the environment of a docker config using the helper, and the helper's log.
	setup := func(t *testing.T, config string, creds map[string]map[string]string) ([]string, string) {
		cfgDir := t.TempDir()
		if err := os.WriteFile(filepath.Join(cfgDir, "config.json"), []byte(config), 0o600); err != nil {
			t.Fatal(err)
		}
		store, _ := json.Marshal(creds)
		if err := os.WriteFile(filepath.Join(cfgDir, "store.json"), store, 0o600); err != nil {
			t.Fatal(err)
		}
		log := filepath.Join(cfgDir, "helper.log")
		return []string{
			"PATH=" + filepath.Dir(helper) + string(os.PathListSeparator) + os.Getenv("PATH"),
			"DOCKER_CONFIG=" + cfgDir, "FERRYTEST_CREDS=" + filepath.Join(cfgDir, "store.json"), "FERRYTEST_LOG=" + log,
		}, log
	}
	ref := reg.Addr + "/shop/helper:1"

	env, log := setup(t, `{"credHelpers":{"`+reg.Addr+`":"ferrytest"}}`, map[string]map[string]string{reg.Addr: {"Username": reg.Username, "Secret": reg.Password}})
	if r := ferry(t, env, "", "bundle", "push", dir, ref, "--plain-http"); r.code != 0 {
		t.Fatalf("push through credHelpers = exit %d %s", r.code, r.stderr)
	}
	if r := ferry(t, env, "", "bundle", "inspect", ref, "--plain-http"); r.code != 0 {
		t.Errorf("inspect through credHelpers = exit %d %s", r.code, r.stderr)
	}
	if calls, _ := os.ReadFile(log); strings.Count(string(calls), "get "+reg.Addr+"\n") < 2 {
		t.Errorf("helper calls = %q, want a get of %s per command", calls, reg.Addr)
	}

	// A helper that fails: exit 2, naming the helper and its message.
	r := ferry(t, append(env, "FERRYTEST_FAIL=the vault is sealed"), "", "bundle", "inspect", ref, "--plain-http")
	if r.code != 2 || !strings.Contains(r.stderr, "credential helper docker-credential-ferrytest (credHelpers entry for "+reg.Addr) ||
		!strings.Contains(r.stderr, "the vault is sealed") || !strings.Contains(r.stderr, "check the helper") {
		t.Errorf("inspect with a failing helper = exit %d %q, want 2 naming docker-credential-ferrytest and its message", r.code, r.stderr)
	}

	// credsStore: nothing stored, so the registry refuses, naming the helper; ferry login stores
	// the credential through the helper, and then inspect works.
	env, log = setup(t, `{"credsStore":"ferrytest"}`, nil)
	r = ferry(t, env, "", "bundle", "inspect", ref, "--plain-http")
	if r.code != 2 || !strings.Contains(r.stderr, "credentials from credential helper docker-credential-ferrytest (credsStore of ") {
		t.Errorf("inspect with an empty credsStore = exit %d %q, want 2 naming the helper", r.code, r.stderr)
	}
	if r := ferry(t, env, reg.Password+"\n", "login", reg.Addr, "-u", reg.Username, "--password-stdin", "--plain-http"); r.code != 0 {
		t.Fatalf("login into credsStore = exit %d %s", r.code, r.stderr)
	}
	if r := ferry(t, env, "", "bundle", "inspect", ref, "--plain-http"); r.code != 0 {
		t.Errorf("inspect after login into credsStore = exit %d %s", r.code, r.stderr)
	}
	if calls, _ := os.ReadFile(log); !strings.Contains(string(calls), "store "+reg.Addr+"\n") {
		t.Errorf("helper calls = %q, want login to store through it", calls)
	}
}

// TestCLIExecPlugin runs `ferry window check` with a kubeconfig whose user has an exec section: a
// real client.authentication.k8s.io/v1 plugin returning a token of the test API server. A plugin
// that fails gives an error naming it, with its message.
func TestCLIExecPlugin(t *testing.T) {
	e := sharedEnv.Get(t)
	c, err := argocd.New(e.Cluster.RESTConfig(), e.ArgoCD.Namespace)
	if err != nil {
		t.Fatal(err)
	}
	err = c.ApplyEnvironment(context.Background(), argocd.Environment{
		Name: "execauth", Namespaces: []string{"execauth"}, SourceRepositories: []string{"oci://x/*"},
		Cluster: argocd.Cluster{Server: e.ArgoCD.ClusterServer, BearerToken: e.Cluster.Token, Insecure: true}, // as every environment of the cluster: Argo CD may use any of them for its URL
		Windows: windowSpecs("allow", "0 2 * * *", "2h", "UTC"),
	})
	if err != nil {
		t.Fatal(err)
	}
	plugin := testenv.BuildCommand(t, "execcred")
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(e.Cluster.Token), 0o600); err != nil {
		t.Fatal(err)
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["test"] = &clientcmdapi.Cluster{Server: e.Cluster.Host, CertificateAuthorityData: e.Cluster.CAData}
	for user, env := range map[string]clientcmdapi.ExecEnvVar{
		"plugin-user":  {Name: "EXECCRED_TOKEN_FILE", Value: tokenFile},
		"failing-user": {Name: "EXECCRED_FAIL", Value: "execcred: the session expired; run execcred login"},
	} {
		kc.AuthInfos[user] = &clientcmdapi.AuthInfo{Exec: &clientcmdapi.ExecConfig{
			APIVersion: "client.authentication.k8s.io/v1", Command: plugin, Env: []clientcmdapi.ExecEnvVar{env},
			InteractiveMode: clientcmdapi.IfAvailableExecInteractiveMode,
		}}
	}
	kc.Contexts["plugin"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "plugin-user"}
	kc.Contexts["failing"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "failing-user"}
	kc.CurrentContext = "plugin"
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, kubeconfig); err != nil {
		t.Fatal(err)
	}
	args := []string{"window", "check", "--environment", "execauth", "--argocd-namespace", e.ArgoCD.Namespace, "--at", "2026-11-26T02:30:00Z"}

	r := ferry(t, []string{"KUBECONFIG=" + kubeconfig, "KUBE_CONFIG_PATH="}, "", args...)
	if r.code != 0 || !strings.Contains(r.stdout, "is open at 2026-11-26T02:30:00Z") {
		t.Fatalf("window check with an exec plugin = exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = ferry(t, []string{"KUBECONFIG=" + kubeconfig, "KUBE_CONFIG_PATH="}, "", append(args, "--context", "failing")...)
	for _, want := range []string{`exec plugin "` + plugin + `" of user "failing-user" of context "failing" in kubeconfig ` + kubeconfig, "execcred: the session expired; run execcred login", "run the plugin by hand"} {
		if r.code != 2 || !strings.Contains(r.stderr, want) {
			t.Errorf("window check with a failing exec plugin = exit %d %q, want exit 2 (permanent) and %q", r.code, r.stderr, want)
		}
	}
}

package kube

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/discovery"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/ferry-dev/terraform-provider-ferry/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// writeKubeconfig writes a kubeconfig with two contexts: "good" (server and token as given) and
// "bad" (a closed port and a wrong token); current is the current context.
func writeKubeconfig(t *testing.T, server, token string, ca []byte, current string) string {
	t.Helper()
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := "https://" + l.Addr().String()
	l.Close()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["good"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: ca}
	cfg.Clusters["bad"] = &clientcmdapi.Cluster{Server: closed, CertificateAuthorityData: ca}
	cfg.AuthInfos["good"] = &clientcmdapi.AuthInfo{Token: token}
	cfg.AuthInfos["bad"] = &clientcmdapi.AuthInfo{Token: "wrong-token"}
	cfg.Contexts["good"] = &clientcmdapi.Context{Cluster: "good", AuthInfo: "good"}
	cfg.Contexts["bad"] = &clientcmdapi.Context{Cluster: "bad", AuthInfo: "bad"}
	cfg.CurrentContext = current
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestPrecedence checks, against a real kube-apiserver, that attributes win over KUBE_*
// environment variables, which win over the kubeconfig.
func TestPrecedence(t *testing.T) {
	c := testenv.StartCluster(t, testenv.ClusterOptions{NoControllerManager: true})
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(caFile, c.CAData, 0o644)
	goodCfg := writeKubeconfig(t, c.Host, c.Token, c.CAData, "good")
	badCfg := writeKubeconfig(t, c.Host, c.Token, c.CAData, "bad")
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	closedHost := "https://" + l.Addr().String()
	l.Close()
	yes, no := true, false
	tests := []struct {
		name    string
		opts    Options
		env     map[string]string
		wantErr string // "" = the API server answers
	}{
		{name: "kubeconfig current context", opts: Options{ConfigPath: goodCfg}},
		{name: "kubeconfig bad context", opts: Options{ConfigPath: badCfg}, wantErr: "connection refused"},
		{name: "attribute context over kubeconfig", opts: Options{ConfigPath: badCfg, ConfigContext: "good"}},
		{name: "env context over kubeconfig", opts: Options{ConfigPath: badCfg}, env: map[string]string{EnvContext: "good"}},
		{name: "attribute context over env", opts: Options{ConfigPath: goodCfg, ConfigContext: "bad"}, env: map[string]string{EnvContext: "good"}, wantErr: "connection refused"},
		{name: "env config path", env: map[string]string{EnvConfigPath: goodCfg}},
		{name: "env config paths", env: map[string]string{EnvConfigPaths: goodCfg + string(os.PathListSeparator) + badCfg}},
		{name: "env host over kubeconfig", opts: Options{ConfigPath: goodCfg}, env: map[string]string{EnvHost: closedHost}, wantErr: "connection refused"},
		{name: "attribute host over env", opts: Options{ConfigPath: goodCfg, Host: c.Host}, env: map[string]string{EnvHost: closedHost}},
		{name: "env token over kubeconfig", opts: Options{ConfigPath: badCfg, ConfigContext: "bad", Host: c.Host}, env: map[string]string{EnvToken: c.Token}},
		{name: "attribute token over env", opts: Options{ConfigPath: goodCfg, Token: c.Token}, env: map[string]string{EnvToken: "wrong-token"}},
		{name: "env token wrong", opts: Options{ConfigPath: goodCfg}, env: map[string]string{EnvToken: "wrong-token"}, wantErr: "provide credentials"},
		{name: "attributes alone", opts: Options{Host: c.Host, Token: c.Token, ClusterCACertificate: string(c.CAData)}},
		{name: "env alone with insecure", env: map[string]string{EnvHost: c.Host, EnvToken: c.Token, EnvInsecure: "true"}},
		{name: "no CA and not insecure", opts: Options{Host: c.Host, Token: c.Token}, wantErr: "certificate"},
		{name: "attribute insecure false over env true", opts: Options{Host: c.Host, Token: c.Token, Insecure: &no}, env: map[string]string{EnvInsecure: "true"}, wantErr: "certificate"},
		{name: "attribute insecure true", opts: Options{Host: c.Host, Token: c.Token, Insecure: &yes}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := tt.opts.WithEnv(func(k string) string { return tt.env[k] })
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := o.RESTConfig()
			if err == nil {
				var dc *discovery.DiscoveryClient
				if dc, err = discovery.NewDiscoveryClientForConfig(cfg); err == nil {
					_, err = dc.ServerVersion()
				}
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("ServerVersion() error = %v, want the API server to answer", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("ServerVersion() error = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"missing kubeconfig", Options{ConfigPath: "/nonexistent/kubeconfig"}, `config_path: invalid Kubernetes settings: kubeconfig "/nonexistent/kubeconfig" cannot be read`},
		{"certificate without key", Options{Host: "https://x", ClientCertificate: "PEM"}, "client_key: invalid Kubernetes settings: client_certificate is set without client_key; set both or neither"},
		{"key without certificate", Options{Host: "https://x", ClientKey: "PEM"}, "client_certificate: invalid Kubernetes settings: client_key is set without client_certificate; set both or neither"},
		{"host without scheme", Options{Host: "10.0.0.1:6443"}, `host: invalid Kubernetes settings: "10.0.0.1:6443" must start with https:// (or http://)`},
		{"insecure with CA", Options{Host: "https://x", Insecure: ptr(true), ClusterCACertificate: "PEM"}, "insecure: invalid Kubernetes settings: insecure = true cannot be combined with cluster_ca_certificate; remove one"},
		{"exec without command", Options{Host: "https://x", Exec: &Exec{APIVersion: "client.authentication.k8s.io/v1"}}, "exec.command: invalid Kubernetes settings: must be set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.opts.Validate()
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) || !errors.Is(err, ErrInvalid) {
				t.Errorf("Validate() = %v, want %q", err, tt.want)
			}
		})
	}
	if _, err := (Options{}).RESTConfig(); !errors.Is(err, ErrNotConfigured) {
		t.Errorf("RESTConfig() of nothing = %v, want ErrNotConfigured", err)
	}
	if _, err := (Options{}).WithEnv(func(k string) string {
		if k == EnvInsecure {
			return "maybe"
		}
		return ""
	}); !errors.Is(err, ErrInvalid) {
		t.Errorf("WithEnv(KUBE_INSECURE=maybe) = %v, want ErrInvalid", err)
	}
}

func ptr[T any](v T) *T { return &v }

// Package provider is the ferry Terraform provider: a thin adapter that exposes the engines of
// bundle/ and internal/ to Terraform. Only New is exported.
package provider

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/function"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"
	"k8s.io/client-go/rest"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"

	"github.com/ferry-dev/terraform-provider-ferry/bundle"
	"github.com/ferry-dev/terraform-provider-ferry/internal/argocd"
	"github.com/ferry-dev/terraform-provider-ferry/internal/kube"
)

var (
	_ provider.Provider              = (*ferryProvider)(nil)
	_ provider.ProviderWithFunctions = (*ferryProvider)(nil)
)

// New returns a constructor of the provider for the given version.
func New(version string) func() provider.Provider {
	return func() provider.Provider { return &ferryProvider{version: version} }
}

type ferryProvider struct {
	version string
	// configured is what Configure handed to resources, for the read shortcut (shortcuts_read.go).
	configured atomic.Pointer[providerData]
}

// providerData is what Configure hands to data sources and resources.
type providerData struct {
	bundles         *bundle.Client
	kube            kube.Options
	argoCDNamespace string
	userAgent       string // of the registry and Kubernetes clients: terraform-provider-ferry/VERSION

	once    sync.Once
	argo    *argocd.Client
	reads   *argocd.BatchReader // the refresh's reads of Applications, over argo
	argoErr error
}

// argocd builds the Argo CD client on first use, so configuring the provider never contacts a
// cluster.
func (d *providerData) argocd() (*argocd.Client, error) {
	d.once.Do(func() {
		var cfg *rest.Config
		if cfg, d.argoErr = d.kube.RESTConfig(); d.argoErr == nil {
			cfg.UserAgent = d.userAgent
			if d.argo, d.argoErr = argocd.New(cfg, d.argoCDNamespace); d.argoErr == nil {
				d.reads = argocd.NewBatchReader(d.argo)
			}
		}
	})
	return d.argo, d.argoErr
}

// providerDataFrom is the shared Configure of data sources and resources: nil before the provider
// is configured, an error for anything but *providerData.
func providerDataFrom(v any, kind string, diags *diag.Diagnostics) *providerData {
	if v == nil {
		return nil
	}
	data, ok := v.(*providerData)
	if !ok {
		diags.AddError("Unexpected "+kind+" Configure Type", fmt.Sprintf("Expected *providerData, got %T. Please report this issue to the provider developers.", v))
	}
	return data
}

// argocdClient returns the Argo CD client, or adds a diagnostic naming the kubernetes block.
func (d *providerData) argocdClient(diags *diag.Diagnostics) *argocd.Client {
	if d == nil {
		diags.AddError("Provider Not Configured", "The ferry provider was not configured.")
		return nil
	}
	c, err := d.argocd()
	if err != nil {
		diags.AddAttributeError(path.Root("kubernetes"), "Unable to Reach the Argo CD Cluster", err.Error()+"\n\nConfigure the provider's kubernetes block (or KUBE_* environment variables) for the cluster where Argo CD runs.")
		return nil
	}
	return c
}

// DefaultArgoCDNamespace is the namespace Argo CD runs in unless argocd_namespace says otherwise.
const DefaultArgoCDNamespace = "argocd"

// EnvCacheDir overrides the default bundle cache directory.
const EnvCacheDir = "FERRY_CACHE_DIR"

func (p *ferryProvider) Metadata(_ context.Context, _ provider.MetadataRequest, resp *provider.MetadataResponse) {
	resp.TypeName = "ferry"
	resp.Version = p.version
}

func (p *ferryProvider) Schema(_ context.Context, _ provider.SchemaRequest, resp *provider.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "The ferry provider reads release bundles (one OCI artifact per release candidate, pushed by " +
			"`ferry bundle push`) and manages, per customer, the Argo CD side of a deployment. Nothing contacts a " +
			"cluster or registry while the provider is configured.",
		Attributes: map[string]schema.Attribute{
			// Optional
			"argocd_namespace": schema.StringAttribute{
				Optional:            true,
				MarkdownDescription: "Namespace Argo CD runs in on the `kubernetes` cluster. Default `" + DefaultArgoCDNamespace + "`.",
			},
			"cache_dir": schema.StringAttribute{
				Optional: true,
				MarkdownDescription: "Directory where bundle manifests and configs are cached by digest, so reading a digest already " +
					"seen costs one registry round trip. Default: `$" + EnvCacheDir + "`, else `ferry/bundles` under the user cache directory.",
			},
		},
		Blocks: map[string]schema.Block{
			"kubernetes": schema.SingleNestedBlock{
				MarkdownDescription: "The cluster where Argo CD runs. Attribute and environment-variable names are those of the " +
					"hashicorp/kubernetes provider; attributes win over environment variables, which win over the kubeconfig. " +
					"The credential is the first of: `token` (or `" + kube.EnvToken + "`); `client_certificate` and `client_key`; " +
					"the token, certificate or auth provider of the kubeconfig context's user; the `exec` plugin, else the exec " +
					"section of the kubeconfig user (as client-go decides). With neither " +
					"`config_path(s)` nor `host`, the in-cluster service account is used when running in a Pod: the API server from " +
					"`KUBERNETES_SERVICE_HOST` and `KUBERNETES_SERVICE_PORT`, the CA and token from " +
					"`/var/run/secrets/kubernetes.io/serviceaccount`, the token re-read every minute and after a 401 so rotated " +
					"tokens are picked up. " +
					"When authentication fails, the error names the credential source and what to do, e.g. `Unauthorized " +
					"(credentials from user \"ci\" of context \"prod\" in kubeconfig /home/ci/.kube/config were refused; renew " +
					"the credentials of user \"ci\" …)`, `… is forbidden: User \"system:serviceaccount:argocd:ferry\" cannot list " +
					"resource \"applications\" … (credentials from in-cluster service account argocd/ferry (token file …) were " +
					"accepted but lack permission; bind the service account to a Role …)`, or, for a failing plugin, " +
					"`kubernetes credentials unavailable: exec plugin \"aws\" (kubernetes.exec): … failed with exit code 1; the plugin " +
					"wrote: \"…\"; run the plugin by hand (aws eks get-token …) and fix what it reports`.",
				Attributes: map[string]schema.Attribute{
					"config_path": schema.StringAttribute{Optional: true, MarkdownDescription: "Path to a kubeconfig file. Environment: `" + kube.EnvConfigPath + "`."},
					"config_paths": schema.ListAttribute{Optional: true, ElementType: types.StringType,
						MarkdownDescription: "Kubeconfig files merged in order. Environment: `" + kube.EnvConfigPaths + "` (separated like `PATH`)."},
					"config_context":         schema.StringAttribute{Optional: true, MarkdownDescription: "Kubeconfig context to use. Environment: `" + kube.EnvContext + "`."},
					"host":                   schema.StringAttribute{Optional: true, MarkdownDescription: "API server URL, `https://HOST:PORT`. Environment: `" + kube.EnvHost + "`."},
					"token":                  schema.StringAttribute{Optional: true, Sensitive: true, MarkdownDescription: "Bearer token. Environment: `" + kube.EnvToken + "`."},
					"client_certificate":     schema.StringAttribute{Optional: true, MarkdownDescription: "PEM client certificate. Environment: `" + kube.EnvClientCertificate + "`."},
					"client_key":             schema.StringAttribute{Optional: true, Sensitive: true, MarkdownDescription: "PEM client key. Environment: `" + kube.EnvClientKey + "`."},
					"cluster_ca_certificate": schema.StringAttribute{Optional: true, MarkdownDescription: "PEM CA certificate of the API server. Environment: `" + kube.EnvClusterCACertificate + "`."},
					"insecure":               schema.BoolAttribute{Optional: true, MarkdownDescription: "Skip TLS verification of the API server. Environment: `" + kube.EnvInsecure + "`."},
				},
				Blocks: map[string]schema.Block{
					"exec": schema.SingleNestedBlock{
						MarkdownDescription: "A client-go credential plugin, e.g. `aws eks get-token`, run as kubectl runs it " +
							"(non-interactive, `KUBERNETES_EXEC_INFO` set) whenever a token is needed; its ExecCredential may return " +
							"a token or a client certificate, cached until `expirationTimestamp`. Ignored when `token` or " +
							"`client_certificate` is set. When the plugin fails, the error names it and quotes what it wrote to " +
							"standard error.",
						Attributes: map[string]schema.Attribute{
							"api_version": schema.StringAttribute{Optional: true, MarkdownDescription: "API version of the plugin's ExecCredential: `client.authentication.k8s.io/v1` or `client.authentication.k8s.io/v1beta1`."},
							"command":     schema.StringAttribute{Optional: true, MarkdownDescription: "Command to run."},
							"args":        schema.ListAttribute{Optional: true, ElementType: types.StringType, MarkdownDescription: "Arguments."},
							"env":         schema.MapAttribute{Optional: true, ElementType: types.StringType, MarkdownDescription: "Extra environment variables, added to the provider's own."},
						},
					},
				},
			},
			"registry": schema.ListNestedBlock{
				MarkdownDescription: "Credentials and transport for an OCI registry, on top of the docker credential store " +
					"(`~/.docker/config.json` and its credential helpers), which is used for every other registry. " +
					"A registry's credential comes from its block's `username` and `password`; a block without them (for " +
					"`plain_http` or `insecure` only) and every other registry use the docker credential store, as docker, oras " +
					"and `ferry login` do: `$DOCKER_CONFIG/config.json` (default `~/.docker/config.json`), where a `credHelpers` " +
					"entry for the host wins over `credsStore`, which wins over the `auths` entries that `ferry login` and " +
					"`docker login` write without a helper. When the registry refuses the credential, or a credential helper " +
					"fails, the error names the source and what to do, e.g. `… unauthorized: registry access unauthorized: …; " +
					"credentials from credential helper docker-credential-ecr-login (credHelpers entry for HOST in " +
					"/home/ci/.docker/config.json); check the helper (echo HOST | docker-credential-ecr-login get shows what " +
					"it returns), or log in again …` or `…; credentials from the provider's registry block for HOST; fix the " +
					"username and password of the registry block for HOST`.",
				NestedObject: schema.NestedBlockObject{
					Attributes: map[string]schema.Attribute{
						"address":    schema.StringAttribute{Required: true, MarkdownDescription: "Registry host, `host[:port]`, as in references."},
						"username":   schema.StringAttribute{Optional: true, MarkdownDescription: "User name."},
						"password":   schema.StringAttribute{Optional: true, Sensitive: true, MarkdownDescription: "Password or token."},
						"plain_http": schema.BoolAttribute{Optional: true, MarkdownDescription: "Talk plain HTTP to this registry (loopback or lab registries). Applies to this address only; every other registry uses HTTPS. Default `false`."},
						"insecure":   schema.BoolAttribute{Optional: true, MarkdownDescription: "Skip TLS certificate verification of this registry (lab registries only). Applies to this address only; every other registry is verified. Default `false`."},
					},
				},
			},
		},
	}
}

func (p *ferryProvider) Configure(ctx context.Context, req provider.ConfigureRequest, resp *provider.ConfigureResponse) {
	var cfg providerModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() {
		return
	}
	data := &providerData{argoCDNamespace: DefaultArgoCDNamespace, userAgent: "terraform-provider-ferry/" + p.version}
	if v := cfg.ArgoCDNamespace.ValueString(); v != "" {
		data.argoCDNamespace = v
	}

	// Kubernetes: validated now, used lazily.
	var ko kube.Options
	if k := cfg.Kubernetes; k != nil {
		ko = kube.Options{
			ConfigPath: k.ConfigPath.ValueString(), ConfigContext: k.ConfigContext.ValueString(),
			Host: k.Host.ValueString(), Token: k.Token.ValueString(),
			ClientCertificate: k.ClientCertificate.ValueString(), ClientKey: k.ClientKey.ValueString(),
			ClusterCACertificate: k.ClusterCACertificate.ValueString(),
		}
		if !k.Insecure.IsNull() && !k.Insecure.IsUnknown() {
			b := k.Insecure.ValueBool()
			ko.Insecure = &b
		}
		resp.Diagnostics.Append(k.ConfigPaths.ElementsAs(ctx, &ko.ConfigPaths, true)...)
		if e := k.Exec; e != nil && !e.Command.IsNull() {
			ko.Exec = &kube.Exec{APIVersion: e.APIVersion.ValueString(), Command: e.Command.ValueString()}
			resp.Diagnostics.Append(e.Args.ElementsAs(ctx, &ko.Exec.Args, true)...)
			resp.Diagnostics.Append(e.Env.ElementsAs(ctx, &ko.Exec.Env, true)...)
		}
	}
	ko, err := ko.WithEnv(os.Getenv)
	if err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("kubernetes").AtName("insecure"), "Invalid Kubernetes Setting", err.Error())
	}
	if err := ko.Validate(); err != nil {
		for _, e := range splitJoined(err) {
			attr, _, _ := strings.Cut(e, ":")
			resp.Diagnostics.AddAttributeError(kubeAttrPath(attr), "Invalid Kubernetes Setting", e+"\n\nFix the attribute in the provider's kubernetes block, or the corresponding KUBE_* environment variable.")
		}
	}
	data.kube = ko

	// Registries: static credentials in front of the docker credential store.
	creds := map[string]auth.Credential{}
	var plain, insecure []string
	for i, r := range cfg.Registries {
		at := path.Root("registry").AtListIndex(i)
		addr := r.Address.ValueString()
		if err := bundle.ValidateRegistryHost(addr); err != nil {
			resp.Diagnostics.AddAttributeError(at.AtName("address"), "Invalid Registry Address", err.Error())
			continue
		}
		if _, dup := creds[addr]; dup {
			resp.Diagnostics.AddAttributeError(at.AtName("address"), "Duplicate Registry Block", fmt.Sprintf("%s is configured twice; keep one registry block per address.", addr))
			continue
		}
		user, pass := r.Username.ValueString(), r.Password.ValueString()
		if (user == "") != (pass == "") {
			missing := "password"
			if user == "" {
				missing = "username"
			}
			resp.Diagnostics.AddAttributeError(at.AtName(missing), "Incomplete Registry Credentials",
				fmt.Sprintf("The registry block for %s sets only one of username and password. Set %s too, or remove both to use the docker credential store.", addr, missing))
			continue
		}
		if user != "" {
			creds[addr] = auth.Credential{Username: user, Password: pass}
		} else {
			creds[addr] = auth.EmptyCredential
		}
		if r.PlainHTTP.ValueBool() {
			plain = append(plain, addr)
		}
		if r.Insecure.ValueBool() {
			insecure = append(insecure, addr)
		}
	}
	if resp.Diagnostics.HasError() {
		return
	}
	var fallback auth.CredentialFunc
	if store, err := bundle.DockerCredentialStore(); err == nil {
		fallback = credentials.Credential(store)
	} else {
		tflog.Warn(ctx, "Docker credential store unavailable; only registry blocks provide credentials", map[string]any{"error": err.Error()})
	}
	// Registries named without credentials fall through to the docker store.
	named := map[string]auth.Credential{}
	for addr, c := range creds {
		if c != auth.EmptyCredential {
			named[addr] = c
		}
	}
	cacheDir := cfg.CacheDir.ValueString()
	if cacheDir == "" {
		cacheDir = os.Getenv(EnvCacheDir)
	}
	if cacheDir == "" {
		if dir, err := os.UserCacheDir(); err == nil {
			cacheDir = filepath.Join(dir, "ferry", "bundles")
		}
	}
	client, err := bundle.NewClient(bundle.ClientOptions{
		PlainHTTPRegistries: plain,
		InsecureRegistries:  insecure,
		Credentials:         bundle.StaticCredentials(named, fallback),
		CredentialSource: func(host string) bundle.CredentialSource {
			if _, ok := named[host]; ok {
				return bundle.CredentialSource{Kind: bundle.CredentialsRegistryBlock, Host: host}
			}
			return bundle.DockerCredentialSource(host)
		},
		CacheDir:  cacheDir,
		UserAgent: data.userAgent,
	})
	if err != nil {
		resp.Diagnostics.AddError("Unable to Configure Registry Access", err.Error())
		return
	}
	data.bundles = client
	tflog.Debug(ctx, "Configured ferry provider", map[string]any{"argocd_namespace": data.argoCDNamespace, "registries": len(cfg.Registries), "cache_dir": cacheDir})
	resp.DataSourceData = data
	resp.ResourceData = data
	p.configured.Store(data)
}

func splitJoined(err error) []string {
	return strings.Split(err.Error(), "\n")
}

func kubeAttrPath(attr string) path.Path {
	p := path.Root("kubernetes")
	switch {
	case strings.HasPrefix(attr, "config_paths["):
		return p.AtName("config_paths")
	case strings.HasPrefix(attr, "exec."):
		return p.AtName("exec").AtName(strings.TrimPrefix(attr, "exec."))
	case strings.HasPrefix(attr, "KUBE_"):
		return p
	}
	return p.AtName(attr)
}

func (p *ferryProvider) Resources(context.Context) []func() resource.Resource {
	return []func() resource.Resource{NewEnvironmentResource, NewApplicationResource}
}

func (p *ferryProvider) Functions(context.Context) []func() function.Function {
	return []func() function.Function{NewWindowStatusFunction}
}

func (p *ferryProvider) DataSources(context.Context) []func() datasource.DataSource {
	return []func() datasource.DataSource{NewBundleDataSource}
}

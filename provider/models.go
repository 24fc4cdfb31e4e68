package provider

import (
	"github.com/hashicorp/terraform-plugin-framework/types"
)

// providerModel is the provider configuration.
type providerModel struct {
	Kubernetes      *kubernetesModel `tfsdk:"kubernetes"`
	ArgoCDNamespace types.String     `tfsdk:"argocd_namespace"`
	Registries      []registryModel  `tfsdk:"registry"`
	CacheDir        types.String     `tfsdk:"cache_dir"`
}

// kubernetesModel is the kubernetes block. //< providerModel
type kubernetesModel struct {
	ConfigPath           types.String `tfsdk:"config_path"`
	ConfigPaths          types.List   `tfsdk:"config_paths"`
	ConfigContext        types.String `tfsdk:"config_context"`
	Host                 types.String `tfsdk:"host"`
	Token                types.String `tfsdk:"token"`
	ClientCertificate    types.String `tfsdk:"client_certificate"`
	ClientKey            types.String `tfsdk:"client_key"`
	ClusterCACertificate types.String `tfsdk:"cluster_ca_certificate"`
	Insecure             types.Bool   `tfsdk:"insecure"`
	Exec                 *execModel   `tfsdk:"exec"`
}

// execModel is the kubernetes.exec block. //< kubernetesModel
type execModel struct {
	APIVersion types.String `tfsdk:"api_version"`
	Command    types.String `tfsdk:"command"`
	Args       types.List   `tfsdk:"args"`
	Env        types.Map    `tfsdk:"env"`
}

// registryModel is one registry block. //< providerModel
type registryModel struct {
	Address   types.String `tfsdk:"address"`
	Username  types.String `tfsdk:"username"`
	Password  types.String `tfsdk:"password"`
	PlainHTTP types.Bool   `tfsdk:"plain_http"`
}

// bundleDataSourceModel is the ferry_bundle data source.
type bundleDataSourceModel struct {
	Reference            types.String `tfsdk:"reference"`
	ID                   types.String `tfsdk:"id"`
	Digest               types.String `tfsdk:"digest"`
	PinnedReference      types.String `tfsdk:"pinned_reference"`
	Repository           types.String `tfsdk:"repository"`
	Name                 types.String `tfsdk:"name"`
	Version              types.String `tfsdk:"version"`
	Description          types.String `tfsdk:"description"`
	Created              types.String `tfsdk:"created"`
	Source               types.String `tfsdk:"source"`
	Revision             types.String `tfsdk:"revision"`
	ArtifactType         types.String `tfsdk:"artifact_type"`
	Annotations          types.Map    `tfsdk:"annotations"`
	Images               types.Map    `tfsdk:"images"`
	Layers               types.List   `tfsdk:"layers"`
	ArgoCDSource         types.Object `tfsdk:"argocd_source"`
	OpenTofuModuleSource types.String `tfsdk:"opentofu_module_source"`
}

// bundleImageModel is one entry of images. //< bundleDataSourceModel
type bundleImageModel struct {
	Reference       types.String `tfsdk:"reference"`
	Repository      types.String `tfsdk:"repository"`
	Tag             types.String `tfsdk:"tag"`
	Digest          types.String `tfsdk:"digest"`
	PinnedReference types.String `tfsdk:"pinned_reference"`
	MediaType       types.String `tfsdk:"media_type"`
}

// bundleLayerModel is one entry of layers. //< bundleDataSourceModel
type bundleLayerModel struct {
	Role      types.String `tfsdk:"role"`
	Title     types.String `tfsdk:"title"`
	MediaType types.String `tfsdk:"media_type"`
	Digest    types.String `tfsdk:"digest"`
	Size      types.Int64  `tfsdk:"size"`
}

// argoCDSourceModel is argocd_source. //< bundleDataSourceModel
type argoCDSourceModel struct {
	RepoURL        types.String `tfsdk:"repo_url"`
	TargetRevision types.String `tfsdk:"target_revision"`
	Path           types.String `tfsdk:"path"`
}

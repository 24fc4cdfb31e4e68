package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/attr"
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
	Insecure  types.Bool   `tfsdk:"insecure"`
}

// bundleDataSourceModel is the ferry_bundle data source.
type bundleDataSourceModel struct {
	Reference             types.String       `tfsdk:"reference"`
	ID                    types.String       `tfsdk:"id"`
	Digest                types.String       `tfsdk:"digest"`
	PinnedReference       types.String       `tfsdk:"pinned_reference"`
	Repository            types.String       `tfsdk:"repository"`
	Name                  types.String       `tfsdk:"name"`
	Version               types.String       `tfsdk:"version"`
	Description           types.String       `tfsdk:"description"`
	Created               types.String       `tfsdk:"created"`
	Source                types.String       `tfsdk:"source"`
	Revision              types.String       `tfsdk:"revision"`
	ArtifactType          types.String       `tfsdk:"artifact_type"`
	Annotations           types.Map          `tfsdk:"annotations"`
	Images                types.Map          `tfsdk:"images"`
	Layers                types.List         `tfsdk:"layers"`
	ArgoCDSource          types.Object       `tfsdk:"argocd_source"`
	OpenTofuModuleSource  types.String       `tfsdk:"opentofu_module_source"`
	TerraformModuleSource types.String       `tfsdk:"terraform_module_source"`
	VerifyModules         types.List         `tfsdk:"verify_modules"`
	Verify                *bundleVerifyModel `tfsdk:"verify"`
	VerifiedBy            types.List         `tfsdk:"verified_by"`
	ReadRelocation        types.Bool         `tfsdk:"read_relocation"`
	RelocatedImages       types.Map          `tfsdk:"relocated_images"`
}

// bundleVerifyModel is the verify block. //< bundleDataSourceModel
type bundleVerifyModel struct {
	PublicKeys           types.Map  `tfsdk:"public_keys"`
	RequiredAttestations types.List `tfsdk:"required_attestations"`
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

// environmentResourceModel is the ferry_environment resource.
type environmentResourceModel struct {
	ID                  types.String              `tfsdk:"id"`
	Name                types.String              `tfsdk:"name"`
	Description         types.String              `tfsdk:"description"`
	Labels              types.Map                 `tfsdk:"labels"`
	Cluster             *clusterModel             `tfsdk:"cluster"`
	Namespaces          types.List                `tfsdk:"namespaces"`
	SourceRepositories  types.List                `tfsdk:"source_repositories"`
	ClusterResources    types.List                `tfsdk:"cluster_resources"`
	RegistryCredentials *registryCredentialsModel `tfsdk:"registry_credentials"`
	Windows             types.List                `tfsdk:"deployment_window"` // of windowModel; unknown while a dynamic block's for_each is
	Frozen              types.Bool                `tfsdk:"frozen"`
	Project             types.String              `tfsdk:"project"`
	ClusterSecret       types.String              `tfsdk:"cluster_secret"`
	RepositorySecret    types.String              `tfsdk:"repository_secret"`
	SignaturePolicy     *signaturePolicyModel     `tfsdk:"signature_policy"`
}

// signaturePolicyModel is the signature_policy block. //< environmentResourceModel
type signaturePolicyModel struct {
	PublicKeys           types.Map  `tfsdk:"public_keys"`
	RequiredAttestations types.List `tfsdk:"required_attestations"`
}

// clusterModel is the cluster block. //< environmentResourceModel
type clusterModel struct {
	InCluster            types.Bool   `tfsdk:"in_cluster"`
	Server               types.String `tfsdk:"server"`
	Name                 types.String `tfsdk:"name"`
	BearerToken          types.String `tfsdk:"bearer_token"`
	BearerTokenWO        types.String `tfsdk:"bearer_token_wo"`
	BearerTokenWOVersion types.Int64  `tfsdk:"bearer_token_wo_version"`
	CAData               types.String `tfsdk:"ca_data"`
	Insecure             types.Bool   `tfsdk:"insecure"`
}

// registryCredentialsModel is the registry_credentials block. //< environmentResourceModel
type registryCredentialsModel struct {
	URL               types.String `tfsdk:"url"`
	Username          types.String `tfsdk:"username"`
	Password          types.String `tfsdk:"password"`
	PasswordWO        types.String `tfsdk:"password_wo"`
	PasswordWOVersion types.Int64  `tfsdk:"password_wo_version"`
	PlainHTTP         types.Bool   `tfsdk:"plain_http"`
}

// windowModel is one deployment_window block. //< environmentResourceModel
// windowAttrTypes is windowModel's object type.
var windowAttrTypes = map[string]attr.Type{
	"kind": types.StringType, "schedule": types.StringType, "duration": types.StringType,
	"time_zone": types.StringType, "manual_sync": types.BoolType, "description": types.StringType,
}

// windowModels reads the deployment_window blocks; known is false while the list or any value in it
// is unknown (e.g. a dynamic block over an unknown variable at validation).
func windowModels(ctx context.Context, l types.List) (ws []windowModel, known bool) {
	if l.IsUnknown() {
		return nil, false
	}
	if diags := l.ElementsAs(ctx, &ws, false); diags.HasError() {
		return nil, false
	}
	return ws, true
}

type windowModel struct {
	Kind        types.String `tfsdk:"kind"`
	Schedule    types.String `tfsdk:"schedule"`
	Duration    types.String `tfsdk:"duration"`
	TimeZone    types.String `tfsdk:"time_zone"`
	ManualSync  types.Bool   `tfsdk:"manual_sync"`
	Description types.String `tfsdk:"description"`
}

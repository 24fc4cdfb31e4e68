package provider

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/listdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/ferry-dev/terraform-provider-ferry/internal/argocd"
	"github.com/ferry-dev/terraform-provider-ferry/internal/window"
)

var (
	_ resource.Resource                   = (*environmentResource)(nil)
	_ resource.ResourceWithConfigure      = (*environmentResource)(nil)
	_ resource.ResourceWithImportState    = (*environmentResource)(nil)
	_ resource.ResourceWithValidateConfig = (*environmentResource)(nil)
	_ resource.ResourceWithModifyPlan     = (*environmentResource)(nil)
)

// NewEnvironmentResource returns the ferry_environment resource.
func NewEnvironmentResource() resource.Resource { return &environmentResource{} }

type environmentResource struct{ data *providerData }

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

func (r *environmentResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_environment"
}

func (r *environmentResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "A customer environment: its cluster, the namespaces and OCI repositories it may deploy from, the " +
			"cluster-scoped kinds it may create, and its deployment windows. ferry manages, in the Argo CD namespace and with " +
			"server-side apply, an AppProject (destinations, source repositories, resource allow list, sync windows), a cluster " +
			"Secret scoped to the project and, with `registry_credentials`, an OCI repository Secret. Deployment windows have " +
			"Argo CD sync-window semantics and are validated at plan time; `terraform plan` warns when the window is closed.\n\n" +
			"ferry owns what it applies: a key it no longer writes into a Secret (`plain_http` turned off, credentials removed) is " +
			"removed, while keys and labels another tool wrote stay. Secrets (`bearer_token`, `password`) are never read back " +
			"into state: a refresh compares them with the Secret and plans an update when they differ (except the write-only " +
			"forms, which Terraform does not keep; change their `_wo_version` to write them again), and the first apply after " +
			"an import writes them again.",
		Attributes: map[string]schema.Attribute{
			// Required
			"name": schema.StringAttribute{
				Required:            true,
				MarkdownDescription: "Environment name: a DNS label. It is also the AppProject name. Changing it replaces the environment.",
				Validators:          []validator.String{stringvalidator.RegexMatches(dnsLabel, "must be a DNS label: 1-63 lowercase letters, digits and '-', starting and ending with a letter or digit")},
				PlanModifiers:       []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"source_repositories": schema.ListAttribute{
				Required: true, ElementType: types.StringType,
				MarkdownDescription: "OCI repositories the project may deploy from, e.g. `oci://registry.example.com/shop/bundle` (globs allowed).",
				Validators: []validator.List{listvalidator.SizeAtLeast(1), listvalidator.ValueStringsAre(
					stringvalidator.RegexMatches(regexp.MustCompile(`^oci://\S+$`), "must be an oci:// repository URL"))},
			},
			// Optional
			"description": schema.StringAttribute{Optional: true, Computed: true, Default: stringdefault.StaticString(""), MarkdownDescription: "Description of the AppProject."},
			"labels":      schema.MapAttribute{Optional: true, ElementType: types.StringType, MarkdownDescription: "Labels on the AppProject and Secrets."},
			"namespaces": schema.ListAttribute{
				Optional: true, Computed: true, ElementType: types.StringType,
				MarkdownDescription: "Namespaces applications may deploy to. Default: `[name]`.",
				Validators:          []validator.List{listvalidator.SizeAtLeast(1), listvalidator.UniqueValues()},
			},
			"cluster_resources": schema.ListAttribute{
				Optional: true, Computed: true, ElementType: types.StringType,
				Default:             listdefault.StaticValue(types.ListValueMust(types.StringType, nil)),
				MarkdownDescription: "Cluster-scoped kinds applications may create, as `Kind` (core group) or `group/Kind`, e.g. `Namespace`. Default: none.",
			},
			"frozen": schema.BoolAttribute{
				Optional: true, Computed: true, Default: booldefault.StaticBool(false),
				MarkdownDescription: "Deny every sync (an always-active deny window), for incidents and holidays.",
			},
			// Computed
			"id":                schema.StringAttribute{Computed: true, MarkdownDescription: "The environment name.", PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()}},
			"project":           schema.StringAttribute{Computed: true, MarkdownDescription: "The AppProject name, for `ferry_application.environment`.", PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()}},
			"cluster_secret":    schema.StringAttribute{Computed: true, MarkdownDescription: "Name of the cluster Secret; empty with `in_cluster`."},
			"repository_secret": schema.StringAttribute{Computed: true, MarkdownDescription: "Name of the repository Secret; empty without `registry_credentials`."},
		},
		Blocks: map[string]schema.Block{
			"signature_policy": schema.SingleNestedBlock{
				MarkdownDescription: "Only signed bundles reach this environment (docs/signing.md): every sync of its applications — by " +
					"`ferry_application`, `ferry app sync` or a fleet rollout — first verifies that the bundle digest carries a signature by one " +
					"of these keys (and the required attestations), and fails with class `permanent`, the Application unchanged, when it does not. " +
					"Stored on the environment's AppProject (annotations `ferry.dev/trusted-keys`, `ferry.dev/required-attestations`), so every " +
					"caller enforces the same policy.",
				Attributes: map[string]schema.Attribute{
					"public_keys": schema.MapAttribute{Optional: true, ElementType: types.StringType,
						MarkdownDescription: "Trusted public keys (PEM, as `cosign.pub`) by name. Several at once for key rotation."},
					"required_attestations": schema.ListAttribute{Optional: true, ElementType: types.StringType,
						Validators:          attestationValidators(),
						MarkdownDescription: requiredAttestationsDoc + " Stored in the annotation `ferry.dev/required-attestations`."},
				},
			},
			"cluster": schema.SingleNestedBlock{
				MarkdownDescription: "The customer's cluster as Argo CD reaches it. Set `server` (and credentials), or `in_cluster = true` for Argo CD's own cluster.",
				Attributes: withAttributes(map[string]schema.Attribute{
					"in_cluster": schema.BoolAttribute{Optional: true, MarkdownDescription: "Use Argo CD's own cluster (`" + argocd.InClusterServer + "`); no cluster Secret is written."},
					"server":     schema.StringAttribute{Optional: true, MarkdownDescription: "API server URL, `https://HOST:PORT`."},
					"name":       schema.StringAttribute{Optional: true, MarkdownDescription: "Cluster name in Argo CD. Default: the environment name."},
					"ca_data":    schema.StringAttribute{Optional: true, MarkdownDescription: "PEM CA certificate of the API server."},
					"insecure":   schema.BoolAttribute{Optional: true, MarkdownDescription: "Skip TLS verification of the API server."},
				}, bearerTokenSecret.attributes()),
			},
			"registry_credentials": schema.SingleNestedBlock{
				MarkdownDescription: "Credentials Argo CD uses to pull bundles (an OCI repository Secret scoped to the project).",
				Attributes: withAttributes(map[string]schema.Attribute{
					"url":        schema.StringAttribute{Optional: true, MarkdownDescription: "Repository URL, `oci://host/repo`. Default: the first of `source_repositories`."},
					"username":   schema.StringAttribute{Optional: true, MarkdownDescription: "User name."},
					"plain_http": schema.BoolAttribute{Optional: true, MarkdownDescription: "The registry speaks plain HTTP (`insecureOCIForceHttp`)."},
				}, passwordSecret.attributes()),
			},
			"deployment_window": schema.ListNestedBlock{
				MarkdownDescription: "A deployment window with Argo CD sync-window semantics: `deny` beats `allow`; with allow windows and none " +
					"active, the environment is closed. Validated at plan time (unknown time zone, bad cron, bad duration are errors).",
				NestedObject: schema.NestedBlockObject{
					Attributes: map[string]schema.Attribute{
						"kind": schema.StringAttribute{Required: true, MarkdownDescription: "`allow` or `deny`.",
							Validators: []validator.String{stringvalidator.OneOf("allow", "deny")}},
						"schedule":    schema.StringAttribute{Required: true, MarkdownDescription: "5-field cron of the window's start, e.g. `0 2 * * 1-5`."},
						"duration":    schema.StringAttribute{Required: true, MarkdownDescription: "Go duration, e.g. `2h`, `90m` (no `d`)."},
						"time_zone":   schema.StringAttribute{Optional: true, MarkdownDescription: "IANA time zone of the schedule. Default UTC."},
						"manual_sync": schema.BoolAttribute{Optional: true, MarkdownDescription: "Let manual syncs through this window (deny) or outside it (allow)."},
						"description": schema.StringAttribute{Optional: true, MarkdownDescription: "Description, at most 255 characters."},
					},
				},
			},
		},
	}
}

func (r *environmentResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.data = providerDataFrom(req.ProviderData, "Resource", &resp.Diagnostics)
}

// ValidateConfig checks the deployment windows at plan time, naming the window and the field.
func (r *environmentResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var m environmentResourceModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	specs, known := windowSpecs(ctx, m.Windows)
	if known {
		resp.Diagnostics.Append(windowDiagnostics(specs, path.Root("deployment_window"))...)
	}
	if c := m.Cluster; c != nil {
		inCluster := c.InCluster.ValueBool()
		if inCluster && !c.Server.IsNull() {
			resp.Diagnostics.AddAttributeError(path.Root("cluster").AtName("server"), "Conflicting Cluster Settings", "Set either in_cluster = true or server, not both.")
		}
		if !inCluster && c.Server.IsNull() {
			resp.Diagnostics.AddAttributeError(path.Root("cluster").AtName("server"), "Missing Cluster Server", "Set server to the API server URL (https://HOST:PORT), or in_cluster = true for Argo CD's own cluster.")
		}
		if !c.Server.IsNull() && !c.Server.IsUnknown() && !strings.HasPrefix(c.Server.ValueString(), "https://") && !strings.HasPrefix(c.Server.ValueString(), "http://") {
			resp.Diagnostics.AddAttributeError(path.Root("cluster").AtName("server"), "Invalid Cluster Server", fmt.Sprintf("%q must be a URL such as https://10.0.0.1:6443.", c.Server.ValueString()))
		}
		bearerTokenSecret.validate(&resp.Diagnostics, path.Root("cluster"), c.BearerToken, c.BearerTokenWO)
	} else {
		resp.Diagnostics.AddAttributeError(path.Root("cluster"), "Missing Cluster Block", "Add a cluster block with server (and a bearer token), or in_cluster = true.")
	}
	if sp := m.SignaturePolicy; sp != nil && !sp.RequiredAttestations.IsNull() && sp.PublicKeys.IsNull() {
		resp.Diagnostics.AddAttributeError(path.Root("signature_policy").AtName("public_keys"), "Missing Trusted Keys",
			"required_attestations are verified with public_keys: add the public key(s) that sign the bundles and their attestations.")
	}
	if rc := m.RegistryCredentials; rc != nil {
		passwordSecret.validate(&resp.Diagnostics, path.Root("registry_credentials"), rc.Password, rc.PasswordWO)
		if password, known := passwordSecret.set(rc.Password, rc.PasswordWO); known && !rc.Username.IsUnknown() && rc.Username.IsNull() == password {
			resp.Diagnostics.AddAttributeError(path.Root("registry_credentials"), "Incomplete Registry Credentials", "Set both username and password (or password_wo), or neither.")
		}
	}
}

// withAttributes returns attrs with the attributes of more added.
func withAttributes(attrs map[string]schema.Attribute, more map[string]schema.Attribute) map[string]schema.Attribute {
	maps.Copy(attrs, more)
	return attrs
}

// windowSpecs converts the blocks; known is false while any value is unknown.
func windowSpecs(ctx context.Context, l types.List) ([]window.Spec, bool) {
	blocks, known := windowModels(ctx, l)
	if !known {
		return nil, false
	}
	var specs []window.Spec
	for _, w := range blocks {
		for _, v := range []types.String{w.Kind, w.Schedule, w.Duration, w.TimeZone, w.Description} {
			if v.IsUnknown() {
				return nil, false
			}
		}
		if w.ManualSync.IsUnknown() {
			return nil, false
		}
		specs = append(specs, window.Spec{
			Kind: w.Kind.ValueString(), Schedule: w.Schedule.ValueString(), Duration: w.Duration.ValueString(),
			TimeZone: w.TimeZone.ValueString(), ManualSync: w.ManualSync.ValueBool(), Description: w.Description.ValueString(),
		})
	}
	return specs, true
}

// windowFieldRE splits "deployment_window[2].time_zone: message".
var windowFieldRE = regexp.MustCompile(`^[a-z_]+\[(\d+)\]\.([a-z_]+): (.*)$`)

// windowDiagnostics parses specs and turns every problem into an attribute error on its window's
// field.
func windowDiagnostics(specs []window.Spec, root path.Path) diag.Diagnostics {
	var diags diag.Diagnostics
	_, err := window.Parse(specs, func(i int) string { return fmt.Sprintf("deployment_window[%d]", i) })
	if err == nil {
		return diags
	}
	for _, line := range strings.Split(err.Error(), "\n") {
		p := root
		if m := windowFieldRE.FindStringSubmatch(line); m != nil {
			i, _ := strconv.Atoi(m[1])
			p = root.AtListIndex(i).AtName(m[2])
		}
		diags.AddAttributeError(p, "Invalid Deployment Window", line)
	}
	return diags
}

// ModifyPlan warns, at plan time, when the environment's deployment window is closed now.
func (r *environmentResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		return
	}
	var m environmentResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if len(m.Namespaces.Elements()) == 0 && m.Namespaces.IsUnknown() && !m.Name.IsUnknown() {
		resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("namespaces"), []string{m.Name.ValueString()})...)
	}
	specs, known := windowSpecs(ctx, m.Windows)
	if !known || m.Frozen.IsUnknown() {
		return
	}
	env := argocd.Environment{Name: m.Name.ValueString(), Windows: specs, Frozen: m.Frozen.ValueBool()}
	ws, err := window.Parse(env.EffectiveWindows(), func(i int) string { return fmt.Sprintf("deployment_window[%d]", i) })
	if err != nil {
		return // ValidateConfig reported it
	}
	st := window.Evaluate(ws, time.Now(), true)
	if !st.Open {
		next := "it does not open within the search horizon"
		if st.NextOpen != nil {
			next = "next opens " + st.NextOpen.UTC().Format(time.RFC3339) + " (in " + time.Until(*st.NextOpen).Round(time.Minute).String() + ")"
		}
		resp.Diagnostics.AddWarning("Deployment Window Closed",
			fmt.Sprintf("The deployment window of %s is closed now: %s; %s. Applications of this environment will not sync until it opens (window_policy decides what ferry_application does).", env.Name, st.Reason, next))
	}
}

func (r *environmentResource) client(diags *diag.Diagnostics) *argocd.Client {
	return r.data.argocdClient(diags)
}

func (r *environmentResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	r.write(ctx, req.Plan, req.Config, &resp.State, &resp.Diagnostics)
}

func (r *environmentResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	r.write(ctx, req.Plan, req.Config, &resp.State, &resp.Diagnostics)
}

type planGetter interface {
	Get(context.Context, any) diag.Diagnostics
}

// write applies the environment from the plan and the write-only secrets from the configuration
// (the framework nulls them in the state it stores).
func (r *environmentResource) write(ctx context.Context, plan, config planGetter, state interface {
	Set(context.Context, any) diag.Diagnostics
}, diags *diag.Diagnostics) {
	var m environmentResourceModel
	diags.Append(plan.Get(ctx, &m)...)
	var cfg environmentResourceModel
	diags.Append(config.Get(ctx, &cfg)...)
	if diags.HasError() {
		return
	}
	c := r.client(diags)
	if c == nil {
		return
	}
	env := m.environment(ctx, &cfg, diags)
	if diags.HasError() {
		return
	}
	tflog.Debug(ctx, "Applying environment", map[string]any{"environment": env.Name, "windows": len(env.Windows), "frozen": env.Frozen})
	if err := c.ApplyEnvironment(ctx, env); err != nil {
		diags.AddError("Unable to Apply Environment", fmt.Sprintf("Writing the AppProject and Secrets of %s failed.\n\nCheck that Argo CD's CRDs are installed and the credentials may write AppProjects and Secrets in namespace %s.\n\nOriginal Error: %v", env.Name, c.Namespace(), err))
		return
	}
	m.ID = types.StringValue(env.Name)
	m.Project = types.StringValue(env.Name)
	m.ClusterSecret = types.StringValue("")
	if !env.Cluster.InCluster {
		m.ClusterSecret = types.StringValue(argocd.ClusterSecretName(env.Name))
	}
	m.RepositorySecret = types.StringValue("")
	if env.RegistryCredentials != nil {
		m.RepositorySecret = types.StringValue(argocd.RepositorySecretName(env.Name))
	}
	diags.Append(state.Set(ctx, &m)...)
}

func (r *environmentResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var m environmentResourceModel
	resp.Diagnostics.Append(req.State.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	c := r.client(&resp.Diagnostics)
	if c == nil {
		return
	}
	name := m.Name.ValueString()
	if name == "" {
		name = m.ID.ValueString()
	}
	live, err := c.ReadEnvironment(ctx, name)
	if errors.Is(err, argocd.ErrNotFound) {
		tflog.Info(ctx, "AppProject deleted out of band; removing the environment from state", map[string]any{"environment": name})
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		resp.Diagnostics.AddError("Unable to Read Environment", fmt.Sprintf("Reading the AppProject %s failed.\n\nOriginal Error: %v", name, err))
		return
	}
	// Applications an interrupted override left in the windowless override project go back.
	repaired, err := c.RepairOverrides(ctx, name)
	for _, msg := range repaired {
		resp.Diagnostics.AddWarning("Interrupted Override Repaired", strings.ToUpper(msg[:1])+msg[1:]+".")
	}
	if err != nil {
		resp.Diagnostics.AddWarning("Unable to Check for Interrupted Overrides", fmt.Sprintf("Environment %s: %v", name, err))
	}
	m.fromLive(ctx, live, &resp.Diagnostics)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (r *environmentResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var m environmentResourceModel
	resp.Diagnostics.Append(req.State.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	c := r.client(&resp.Diagnostics)
	if c == nil {
		return
	}
	if err := c.DeleteEnvironment(ctx, m.Name.ValueString()); err != nil {
		if errors.Is(err, argocd.ErrInUse) {
			resp.Diagnostics.AddError("Environment Still In Use",
				fmt.Sprintf("%v.\n\nDelete or move those applications first (destroy their ferry_application resources, or make them depend on this environment so Terraform destroys them first).", err))
			return
		}
		resp.Diagnostics.AddError("Unable to Delete Environment", err.Error())
	}
}

// ImportState imports an environment by name.
func (r *environmentResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("name"), req.ID)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), req.ID)...)
}

// requiredAttestationsDoc and attestationValidators describe required_attestations, of a
// signature_policy and of the ferry_bundle data source's verify block.
const requiredAttestationsDoc = "Attestations that must also be attached to the digest, each signed by one of `public_keys`: `sbom` " +
	"(CycloneDX, attached by `ferry bundle push --sign-key`), `provenance` (SLSA v1, likewise) or a predicate type URI " +
	"(what `cosign attest --type` writes)."

func attestationValidators() []validator.List {
	return []validator.List{listvalidator.ValueStringsAre(stringvalidator.Any(
		stringvalidator.OneOf("sbom", "cyclonedx", "provenance", "slsaprovenance1"),
		stringvalidator.RegexMatches(regexp.MustCompile(`^https?://[^/]+/.`), "a predicate type URI")))}
}

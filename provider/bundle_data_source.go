package provider

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/ferry-dev/terraform-provider-ferry/bundle"
)

var (
	_ datasource.DataSource              = (*bundleDataSource)(nil)
	_ datasource.DataSourceWithConfigure = (*bundleDataSource)(nil)
)

// NewBundleDataSource returns the ferry_bundle data source.
func NewBundleDataSource() datasource.DataSource { return &bundleDataSource{} }

type bundleDataSource struct{ data *providerData }

var (
	bundleImageAttrTypes = map[string]attr.Type{
		"reference": types.StringType, "repository": types.StringType, "tag": types.StringType,
		"digest": types.StringType, "pinned_reference": types.StringType, "media_type": types.StringType,
	}
	bundleLayerAttrTypes = map[string]attr.Type{
		"role": types.StringType, "title": types.StringType, "media_type": types.StringType,
		"digest": types.StringType, "size": types.Int64Type,
	}
	argoCDSourceAttrTypes = map[string]attr.Type{
		"repo_url": types.StringType, "target_revision": types.StringType, "path": types.StringType,
	}
)

func (d *bundleDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_bundle"
}

func (d *bundleDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	str := func(desc string) schema.StringAttribute {
		return schema.StringAttribute{Computed: true, MarkdownDescription: desc}
	}
	resp.Schema = schema.Schema{
		MarkdownDescription: "Reads a release bundle pushed by `ferry bundle push`: its digest, the images it locks, its layers, " +
			"and the exact sources Argo CD and OpenTofu need to deploy that digest. Manifests and configs are cached on disk by " +
			"digest, so reading a digest already seen costs one registry round trip.",
		Attributes: map[string]schema.Attribute{
			// Required
			"reference": schema.StringAttribute{
				Required: true,
				MarkdownDescription: "The bundle: `host/repo:tag`, `host/repo@sha256:…` or `oci-layout:PATH[:tag]`. " +
					"A tag is resolved at every read; pin `pinned_reference` into deployments.",
			},
			// Computed
			"id":               str("The manifest digest."),
			"digest":           str("The manifest digest, `sha256:…`."),
			"pinned_reference": str("`repository@digest`: the reference to deploy."),
			"repository":       str("The repository, `host/repo` (or `oci-layout:PATH`)."),
			"name":             str("Bundle name from `ferry.yaml`."),
			"version":          str("Bundle version from `ferry.yaml`."),
			"description":      str("Bundle description."),
			"created":          str("Creation time, RFC 3339."),
			"source":           str("Source repository URL."),
			"revision":         str("Source revision."),
			"artifact_type":    str("The manifest's artifactType."),
			"annotations": schema.MapAttribute{Computed: true, ElementType: types.StringType,
				MarkdownDescription: "The manifest annotations."},
			"images": schema.MapNestedAttribute{
				Computed:            true,
				MarkdownDescription: "The images lock, by logical name from `ferry.yaml`.",
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"reference":        str("The reference as written in `ferry.yaml`."),
					"repository":       str("The normalized repository."),
					"tag":              str("The tag as written, if any."),
					"digest":           str("The resolved digest (an index stays an index)."),
					"pinned_reference": str("`repository@digest`."),
					"media_type":       str("Media type of what the digest names."),
				}},
			},
			"layers": schema.ListNestedAttribute{
				Computed:            true,
				MarkdownDescription: "The layers in order, with their roles (`manifests`, `terraform`, `plugins`).",
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"role":       str("Layer role."),
					"title":      str("The layer's `org.opencontainers.image.title`."),
					"media_type": str("Layer media type."),
					"digest":     str("Layer digest."),
					"size":       schema.Int64Attribute{Computed: true, MarkdownDescription: "Layer size in bytes."},
				}},
			},
			"argocd_source": schema.SingleNestedAttribute{
				Computed:            true,
				MarkdownDescription: "The Argo CD Application source for this digest. Null for an OCI layout.",
				Attributes: map[string]schema.Attribute{
					"repo_url":        str("`oci://host/repo`."),
					"target_revision": str("The manifest digest."),
					"path":            str("`.`: the manifests sit at the root of the content layer."),
				},
			},
			"opentofu_module_source": str("`oci://host/repo?digest=sha256:…` for an OpenTofu `module` block. Null when the bundle has no Terraform layer or is in an OCI layout."),
			"terraform_module_source": str("`https://host/v2/repo/blobs/sha256:…?archive=zip`: the Terraform layer's blob in the registry, " +
				"for a Terraform `module` block's `source` (Terraform's HTTP module source; `http://` for a `plain_http` registry). " +
				"`terraform init` installs the bundle's module from it with no ferry binary on the machine; check what it installed " +
				"with `verify_modules`. Null when the bundle has no Terraform layer or is in an OCI layout."),
			"verify_modules": schema.ListAttribute{
				Optional: true, ElementType: types.StringType,
				MarkdownDescription: "Module keys — `infra` for a root module's `module \"infra\"` block, `infra.network` for one inside it — " +
					"that `terraform init` or `tofu init` installed from this bundle (from `terraform_module_source`, `opentofu_module_source` " +
					"or a copy). The read downloads the bundle's Terraform layer (digest verified) and fails, so the plan fails before " +
					"anything changes, unless each module's installed files are exactly the layer's: the same paths, the same bytes, no other file. " +
					"The modules are found in `modules.json` of the data directory (`$TF_DATA_DIR`, else `.terraform`) in the directory Terraform runs in.",
			},
			"read_relocation": schema.BoolAttribute{Optional: true,
				MarkdownDescription: "Read the relocation record that `ferry bundle copy` attached when it copied the bundle into this repository " +
					"(docs/air-gap.md), into `relocated_images`; the read fails when there is none. One more registry request."},
			"relocated_images": schema.MapAttribute{Computed: true, ElementType: types.StringType,
				MarkdownDescription: "With `read_relocation = true`: each image's relocated reference, pinned (`host/repo@sha256:…`), by logical name. " +
					"The record is not signed; it is checked against the bundle's own images (the same names and digests), so it can only ever " +
					"name another place for the same content. Null otherwise."},
			"verified_by": schema.ListAttribute{Computed: true, ElementType: types.StringType,
				MarkdownDescription: "With a `verify` block: the names of the trusted keys whose signature of this digest verified. Null without one."},
		},
		Blocks: map[string]schema.Block{
			"verify": schema.SingleNestedBlock{
				MarkdownDescription: "Require a signature of the bundle's digest by a trusted key (docs/signing.md): the read, and so the plan, " +
					"fails before anything changes unless the digest the reference resolves to has one. A signature is a Sigstore bundle " +
					"attached as an OCI referrer by `ferry bundle push --sign-key`, `ferry bundle sign` or `cosign sign --key`.",
				Attributes: map[string]schema.Attribute{
					"public_keys": schema.MapAttribute{Optional: true, ElementType: types.StringType,
						MarkdownDescription: "Trusted public keys (PEM, as `cosign.pub`) by name, e.g. `{ release-2026 = file(\"release-2026.pub\") }`. " +
							"A signature by any of them is accepted (key rotation: trust the new key next to the old one)."},
					"required_attestations": schema.ListAttribute{Optional: true, ElementType: types.StringType,
						Validators: attestationValidators(), MarkdownDescription: requiredAttestationsDoc},
				},
			},
		},
	}
}

func (d *bundleDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.data = providerDataFrom(req.ProviderData, "Data Source", &resp.Diagnostics)
}

func (d *bundleDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m bundleDataSourceModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	ref, err := bundle.ParseReference(m.Reference.ValueString())
	if err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("reference"), "Invalid Bundle Reference",
			err.Error()+"\n\nWrite host/repo:tag, host/repo@sha256:… or oci-layout:PATH[:tag].")
		return
	}
	tflog.Debug(ctx, "Reading bundle", map[string]any{"reference": ref.String()})
	info, err := bundle.Inspect(ctx, d.data.bundles, ref)
	if err != nil {
		summary, todo := bundleErrorAdvice(err, ref)
		resp.Diagnostics.AddAttributeError(path.Root("reference"), summary, fmt.Sprintf("Reading bundle %s failed.\n\n%s\n\nOriginal Error: %v", ref, todo, err))
		return
	}
	tflog.Debug(ctx, "Read bundle", map[string]any{"reference": ref.String(), "digest": info.Digest})
	resp.Diagnostics.Append(fillBundleModel(ctx, &m, ref, info)...)
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(d.verifyModules(ctx, m, ref, info)...)
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(d.verifySignature(ctx, &m, ref, info)...)
	resp.Diagnostics.Append(d.readRelocation(ctx, &m, ref, info)...)
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

// verifySignature checks the verify block: a signature of the digest just read (not of what the
// tag points at by now) by one of the trusted keys.
func (d *bundleDataSource) verifySignature(ctx context.Context, m *bundleDataSourceModel, ref bundle.Reference, info *bundle.Info) (diags diag.Diagnostics) {
	m.VerifiedBy = types.ListNull(types.StringType)
	if m.Verify == nil {
		return nil
	}
	at := path.Root("verify").AtName("public_keys")
	var pems map[string]string
	if diags.Append(m.Verify.PublicKeys.ElementsAs(ctx, &pems, false)...); diags.HasError() {
		return diags
	}
	if len(pems) == 0 {
		diags.AddAttributeError(at, "No Trusted Key", "The verify block needs at least one public key in public_keys, e.g. { release = file(\"cosign.pub\") }.")
		return diags
	}
	var keys []bundle.TrustedKey
	for _, name := range slices.Sorted(maps.Keys(pems)) {
		k, err := bundle.ParseTrustedKey(name, []byte(pems[name]))
		if err != nil {
			diags.AddAttributeError(at.AtMapKey(name), "Invalid Trusted Key", err.Error())
			return diags
		}
		keys = append(keys, k)
	}
	var names []string
	if diags.Append(m.Verify.RequiredAttestations.ElementsAs(ctx, &names, false)...); diags.HasError() {
		return diags
	}
	require, err := bundle.AttestationTypes(names)
	if err != nil {
		diags.AddAttributeError(path.Root("verify").AtName("required_attestations"), "Invalid Attestation", err.Error())
		return diags
	}
	pinned := ref
	pinned.Tag, pinned.Digest = "", info.Digest
	res, err := bundle.Verify(ctx, d.data.bundles, pinned, keys, require...)
	if err != nil {
		summary := "Unable to Verify Bundle Signature"
		switch {
		case errors.Is(err, bundle.ErrUnsigned):
			summary = "Bundle Not Signed"
		case errors.Is(err, bundle.ErrBadSignature):
			summary = "Bundle Signature Does Not Verify"
		case errors.Is(err, bundle.ErrUntrustedKey):
			summary = "Bundle Signed by No Trusted Key"
		case errors.Is(err, bundle.ErrSignatureDigest):
			summary = "Bundle Signature for Another Digest"
		case errors.Is(err, bundle.ErrMissingAttestation):
			summary = "Bundle Attestation Missing"
		}
		diags.AddAttributeError(at, summary, fmt.Sprintf("Bundle %s (%s) does not pass the verify block; nothing was changed.\n\n"+
			"Sign it with `ferry bundle sign %s --key KEY`, or push it with --sign-key (which also attaches its SBOM and provenance), "+
			"or trust the key that signed it.\n\nOriginal Error: %v", ref, info.Digest, pinned, err))
		return diags
	}
	var by []string
	for _, s := range res.Signatures {
		if !slices.Contains(by, s.Key) {
			by = append(by, s.Key)
		}
	}
	m.VerifiedBy, diags = types.ListValueFrom(ctx, types.StringType, by)
	return diags
}

// readRelocation fills relocated_images from the relocation record, when asked to.
func (d *bundleDataSource) readRelocation(ctx context.Context, m *bundleDataSourceModel, ref bundle.Reference, info *bundle.Info) (diags diag.Diagnostics) {
	m.RelocatedImages = types.MapNull(types.StringType)
	if !m.ReadRelocation.ValueBool() {
		return nil
	}
	rec, err := bundle.ReadRelocation(ctx, d.data.bundles, ref, info)
	at := path.Root("read_relocation")
	switch {
	case err != nil:
		diags.AddAttributeError(at, "Unable to Read Relocation Record", fmt.Sprintf("Reading the relocation record of %s failed.\n\nOriginal Error: %v", info.PinnedReference, err))
		return diags
	case rec == nil:
		diags.AddAttributeError(at, "Bundle Not Relocated Here", fmt.Sprintf("%s carries no relocation record for this repository: it was not copied here by `ferry bundle copy`. "+
			"Copy it (ferry bundle copy SRC %s), or remove read_relocation.", info.PinnedReference, ref.Name()))
		return diags
	}
	images := map[string]string{}
	for _, im := range rec.Images {
		images[im.Name] = im.To
	}
	m.RelocatedImages, diags = types.MapValueFrom(ctx, types.StringType, images)
	return diags
}

// bundleErrorAdvice returns the diagnostic summary for a bundle read error and what to do.
func bundleErrorAdvice(err error, ref bundle.Reference) (string, string) {
	switch {
	case errors.Is(err, bundle.ErrNotFound):
		return "Bundle Not Found", "Check the tag or digest, or push the release with `ferry bundle push DIR " + ref.Name() + ":TAG`."
	case errors.Is(err, bundle.ErrNotBundle), errors.Is(err, bundle.ErrLayout):
		return "Not a Ferry Bundle", "The reference exists but is not a ferry bundle. Point it at an artifact pushed by `ferry bundle push`."
	case errors.Is(err, bundle.ErrUnauthorized):
		var ce *bundle.CredentialError
		if errors.As(err, &ce) {
			return "Registry Access Denied", "The error below names the credential source that was used for " + ref.Registry + " and what to do about it."
		}
		return "Registry Access Denied", "Add a registry block with username and password for " + ref.Registry + " to the provider, or log in with `ferry login` / `docker login`."
	case errors.Is(err, bundle.ErrUntrusted), errors.Is(err, bundle.ErrUnreachable):
		return registryAdvice(err, ref)
	}
	return "Unable to Read Bundle", "Check the reference and the registry."
}

// registryAdvice says what to do about an unusable registry from the real cause (bundle.Cause),
// in provider terms; a TLS or plain_http hint only when TLS is what failed.
func registryAdvice(err error, ref bundle.Reference) (string, string) {
	kind, host := bundle.Cause(err)
	if host == "" {
		host = ref.Registry
	}
	block := "the registry block for " + ref.Registry
	switch kind {
	case bundle.CauseSchemeHTTP:
		return "Registry Speaks Plain HTTP", host + " answers plain HTTP: set plain_http = true in " + block + "."
	case bundle.CauseSchemeHTTPS:
		return "Registry Speaks HTTPS", host + " speaks HTTPS: remove plain_http from " + block + " (if its certificate is private, add its CA to the trust store of the machine running Terraform, or set insecure = true)."
	case bundle.CauseCertificate, bundle.CauseTLS:
		return "Registry Certificate Not Trusted", "The TLS certificate of " + host + " does not verify. Add its CA to the trust store of the machine running Terraform (or point SSL_CERT_FILE at it), or set insecure = true in " + block + " (lab registries only)."
	case bundle.CauseDNS:
		return "Registry Unreachable", "Cannot resolve " + host + ": check the name in the reference."
	case bundle.CauseRefused:
		return "Registry Unreachable", "Nothing listens at " + host + ": check the address and port in the reference."
	case bundle.CauseTimeout:
		return "Registry Unreachable", host + " did not answer in time: check the network and firewall between Terraform and the registry."
	}
	return "Registry Unreachable", "Check the address of " + host + " and the network, then retry."
}

func fillBundleModel(ctx context.Context, m *bundleDataSourceModel, ref bundle.Reference, info *bundle.Info) (diags diag.Diagnostics) {
	m.ID = types.StringValue(info.Digest)
	m.Digest = types.StringValue(info.Digest)
	m.PinnedReference = types.StringValue(info.PinnedReference)
	m.Repository = types.StringValue(info.Reference)
	m.Name = types.StringValue(info.Name)
	m.Version = types.StringValue(info.Version)
	m.Description = types.StringValue(info.Description)
	m.Created = types.StringValue(info.Created)
	m.Source = types.StringValue(info.Source)
	m.Revision = types.StringValue(info.Revision)
	m.ArtifactType = types.StringValue(info.ArtifactType)

	var d diag.Diagnostics
	m.Annotations, d = types.MapValueFrom(ctx, types.StringType, info.Annotations)
	diags.Append(d...)

	images := map[string]bundleImageModel{}
	for _, im := range info.Images {
		images[im.Name] = bundleImageModel{
			Reference: types.StringValue(im.Reference), Repository: types.StringValue(im.Repository),
			Tag: types.StringValue(im.Tag), Digest: types.StringValue(im.Digest),
			PinnedReference: types.StringValue(im.Pinned()), MediaType: types.StringValue(im.MediaType),
		}
	}
	m.Images, d = types.MapValueFrom(ctx, types.ObjectType{AttrTypes: bundleImageAttrTypes}, images)
	diags.Append(d...)

	layers := make([]bundleLayerModel, 0, len(info.Layers))
	for _, l := range info.Layers {
		layers = append(layers, bundleLayerModel{
			Role: types.StringValue(l.Role), Title: types.StringValue(l.Title), MediaType: types.StringValue(l.MediaType),
			Digest: types.StringValue(l.Digest), Size: types.Int64Value(l.Size),
		})
	}
	m.Layers, d = types.ListValueFrom(ctx, types.ObjectType{AttrTypes: bundleLayerAttrTypes}, layers)
	diags.Append(d...)

	m.ArgoCDSource = types.ObjectNull(argoCDSourceAttrTypes)
	m.OpenTofuModuleSource, m.TerraformModuleSource = types.StringNull(), types.StringNull()
	if !ref.IsLayout() {
		m.ArgoCDSource, d = types.ObjectValueFrom(ctx, argoCDSourceAttrTypes, argoCDSourceModel{
			RepoURL: types.StringValue(ref.OCIURL()), TargetRevision: types.StringValue(info.Digest), Path: types.StringValue("."),
		})
		diags.Append(d...)
		if info.OpenTofuModuleSource != "" {
			m.OpenTofuModuleSource = types.StringValue(info.OpenTofuModuleSource)
		}
		if info.TerraformModuleSource != "" {
			m.TerraformModuleSource = types.StringValue(info.TerraformModuleSource)
		}
	}
	return diags
}

// verifyModules checks each module of verify_modules against the bundle's Terraform layer,
// downloaded once.
func (d *bundleDataSource) verifyModules(ctx context.Context, m bundleDataSourceModel, ref bundle.Reference, info *bundle.Info) (diags diag.Diagnostics) {
	if m.VerifyModules.IsNull() {
		return nil
	}
	var keys []string
	diags.Append(m.VerifyModules.ElementsAs(ctx, &keys, false)...)
	if diags.HasError() || len(keys) == 0 {
		return diags
	}
	if _, ok := info.TerraformLayer(); !ok {
		diags.AddAttributeError(path.Root("verify_modules"), "Bundle Has No Terraform Module",
			fmt.Sprintf("Bundle %s has no Terraform layer, so no module can be verified against it. Remove verify_modules, or push a release whose ferry.yaml names a terraform directory.", info.PinnedReference))
		return diags
	}
	pinned := ref
	pinned.Tag, pinned.Digest = "", info.Digest
	module, err := bundle.LoadModule(ctx, d.data.bundles, pinned)
	if err != nil {
		summary, todo := bundleErrorAdvice(err, ref)
		diags.AddAttributeError(path.Root("verify_modules"), summary, fmt.Sprintf("Reading the Terraform module of bundle %s failed.\n\n%s\n\nOriginal Error: %v", info.PinnedReference, todo, err))
		return diags
	}
	for i, key := range keys {
		at := path.Root("verify_modules").AtListIndex(i)
		dir, source, err := bundle.InstalledModule("", key)
		if err != nil {
			diags.AddAttributeError(at, "Module Not Installed", err.Error())
			continue
		}
		tflog.Debug(ctx, "Verifying module", map[string]any{"module": key, "dir": dir, "source": source, "digest": info.Digest})
		if err := module.Verify(ctx, dir); err != nil {
			diags.AddAttributeError(at, "Module Differs From the Bundle",
				fmt.Sprintf("Module %q, installed from %s, is not the Terraform module of bundle %s: %v\n\n"+
					"Point its source at this bundle's module (terraform_module_source or opentofu_module_source) and run terraform init again; "+
					"nothing was planned, so nothing changes until they agree.", key, source, info.PinnedReference, err))
		}
	}
	return diags
}

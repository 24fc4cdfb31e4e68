package provider

import (
	"context"
	"fmt"
	"reflect"

	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/defaults"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

// NewServer returns the provider's protocol 6 server, as Terraform and the acceptance tests run it:
// the plugin framework's server, with the per-resource calls a large `terraform plan` makes for
// every ferry_application answered without the framework where the answer is certain
// (shortcuts): the validation of a valid configuration (shortcuts_validate.go), the state upgrade
// of current-version state, the refresh (shortcuts_read.go), and the plan of an application whose
// configuration did not change and that has not drifted.
func NewServer(version string) func() (tfprotov6.ProviderServer, error) {
	return func() (tfprotov6.ProviderServer, error) {
		p := New(version)().(*ferryProvider)
		fw, err := providerserver.NewProtocol6WithError(p)()
		if err != nil {
			return nil, err
		}
		sc, err := newShortcuts(context.Background(), p)
		if err != nil {
			return nil, err
		}
		return server{ProviderServer: fw, shortcuts: sc}, nil
	}
}

// server is the framework's server with the shortcuts in front of it. It forwards the calls of
// tfprotov6.ProviderServer only; ferry has no list resources, actions or state stores, the
// optional interfaces it would otherwise have to forward too.
type server struct {
	tfprotov6.ProviderServer
	shortcuts *shortcuts
}

func (s server) UpgradeResourceState(ctx context.Context, req *tfprotov6.UpgradeResourceStateRequest) (*tfprotov6.UpgradeResourceStateResponse, error) {
	if resp := s.shortcuts.upgrade(req); resp != nil {
		return resp, nil
	}
	return s.ProviderServer.UpgradeResourceState(ctx, req)
}

func (s server) ValidateResourceConfig(ctx context.Context, req *tfprotov6.ValidateResourceConfigRequest) (*tfprotov6.ValidateResourceConfigResponse, error) {
	if resp := s.shortcuts.validate(ctx, req); resp != nil {
		return resp, nil
	}
	return s.ProviderServer.ValidateResourceConfig(ctx, req)
}

func (s server) ReadResource(ctx context.Context, req *tfprotov6.ReadResourceRequest) (*tfprotov6.ReadResourceResponse, error) {
	if resp := s.shortcuts.read(ctx, req); resp != nil {
		return resp, nil
	}
	return s.ProviderServer.ReadResource(ctx, req)
}

func (s server) PlanResourceChange(ctx context.Context, req *tfprotov6.PlanResourceChangeRequest) (*tfprotov6.PlanResourceChangeResponse, error) {
	if resp := s.shortcuts.plan(req); resp != nil {
		return resp, nil
	}
	return s.ProviderServer.PlanResourceChange(ctx, req)
}

// applicationType is ferry_application's type name.
const applicationType = "ferry_application"

// shortcuts answer the four calls Terraform makes for every ferry_application in a plan, exactly
// as the framework would, without its per-call work (TestValidateShortcut, TestUpgradeShortcut,
// TestReadShortcut and TestPlanShortcut compare their answers with the framework's). validate and
// read are described in their files; upgrade and plan here.
//
// upgrade: state stored at the schema's current version is only decoded with the schema's type
// (attributes the schema no longer has ignored) and encoded again, the framework's passthrough,
// with the type computed once instead of from the schema on every call.
//
// plan answers the most common plan of all, a refreshed ferry_application whose
// configuration did not change and that has not drifted, with the prior state, as the framework
// would. A `terraform plan` of hundreds of applications makes one such call per application, and
// the framework's schema-wide plan modification (every attribute looked up three times and the
// whole object rewritten once per attribute) was the largest part of the provider's time
// (docs/performance.md). Every other plan goes to the framework. The shortcut answers only when
// nothing the framework does could change the plan:
//   - the prior state is known and not null, and Terraform's proposed new state equals it, so no
//     argument changed and computed attributes keep their values;
//   - every argument with a default that the configuration leaves null is at its default in the
//     prior state (the framework would plan the default otherwise);
//   - the schema's plan modifiers are only RequiresReplace and UseStateForUnknown, which do nothing
//     when the plan equals the state (checked when the shortcut is built);
//   - ModifyPlan would not plan drift: wait is true and driftReason, the function ModifyPlan uses,
//     finds the application Synced at the bundle's digest.
type shortcuts struct {
	typ     tftypes.Type
	version int64
	// defaults are the top-level arguments' default values, by name.
	defaults map[string]tftypes.Value
	// validation is what the validate shortcut checks (shortcuts_validate.go).
	validation *validation
	// provider is the provider whose configuration the read shortcut uses (shortcuts_read.go).
	provider *ferryProvider
}

// newShortcuts builds the shortcuts of provider p (the read shortcut answers once p is configured;
// nil: it never does).
func newShortcuts(ctx context.Context, p *ferryProvider) (*shortcuts, error) {
	cd, err := applicationCodec()
	if err != nil {
		return nil, err
	}
	s := applicationSchema()
	sc := &shortcuts{typ: cd.typ, version: s.Version, defaults: map[string]tftypes.Value{}, provider: p}
	if sc.validation, err = newValidation(s); err != nil {
		return nil, err
	}
	if err := checkReadSchema(ctx, s); err != nil {
		return nil, err
	}
	noOp := map[reflect.Type]bool{
		reflect.TypeOf(stringplanmodifier.RequiresReplace()):    true,
		reflect.TypeOf(stringplanmodifier.UseStateForUnknown()): true,
	}
	for name, a := range s.Attributes {
		switch a := a.(type) {
		case schema.StringAttribute:
			for _, m := range a.PlanModifiers {
				if !noOp[reflect.TypeOf(m)] {
					return nil, fmt.Errorf("shortcuts: %s has plan modifier %T, which it does not know", name, m)
				}
			}
			if a.Default != nil {
				var d defaults.StringResponse
				a.Default.DefaultString(ctx, defaults.StringRequest{Path: path.Root(name)}, &d)
				sc.defaults[name] = tftypes.NewValue(tftypes.String, d.PlanValue.ValueStringPointer())
			}
		case schema.BoolAttribute:
			if len(a.PlanModifiers) > 0 {
				return nil, fmt.Errorf("shortcuts: %s has plan modifiers, which it does not know", name)
			}
			if a.Default != nil {
				var d defaults.BoolResponse
				a.Default.DefaultBool(ctx, defaults.BoolRequest{Path: path.Root(name)}, &d)
				sc.defaults[name] = tftypes.NewValue(tftypes.Bool, d.PlanValue.ValueBoolPointer())
			}
		default:
			if err := plainAttribute(name, a); err != nil {
				return nil, err
			}
		}
	}
	for name, b := range s.Blocks {
		if err := plainAttribute(name, b); err != nil {
			return nil, err
		}
		if len(b.GetNestedObject().GetBlocks()) > 0 {
			return nil, fmt.Errorf("shortcuts: block %s has nested blocks, which it does not check", name)
		}
		for attrName, a := range b.GetNestedObject().GetAttributes() {
			if err := plainAttribute(name+"."+attrName, a); err != nil {
				return nil, err
			}
		}
	}
	return sc, nil
}

// plainAttribute refuses an attribute (or block) with a default or plan modifiers, its own or
// those of its nested attributes: the plan shortcut handles those of top-level string and bool
// attributes only.
func plainAttribute(name string, a any) error {
	v := reflect.ValueOf(a)
	for _, field := range []string{"Default", "PlanModifiers"} {
		if f := v.FieldByName(field); f.IsValid() && !f.IsZero() && !(f.Kind() == reflect.Slice && f.Len() == 0) {
			return fmt.Errorf("shortcuts: %s has %s, which it does not handle", name, field)
		}
	}
	if f := v.FieldByName("Attributes"); f.IsValid() && f.Kind() == reflect.Map {
		for it := f.MapRange(); it.Next(); {
			if err := plainAttribute(name+"."+it.Key().String(), it.Value().Interface()); err != nil {
				return err
			}
		}
	}
	return nil
}

// upgrade returns the framework's response to req when the state is at the current version, nil
// otherwise (and when it does not decode, so that the framework reports why).
func (p *shortcuts) upgrade(req *tfprotov6.UpgradeResourceStateRequest) *tfprotov6.UpgradeResourceStateResponse {
	if req.TypeName != applicationType || req.RawState == nil || req.Version != p.version {
		return nil
	}
	v, err := req.RawState.UnmarshalWithOpts(p.typ, tfprotov6.UnmarshalOpts{ValueFromJSONOpts: tftypes.ValueFromJSONOpts{IgnoreUndefinedAttributes: true}})
	if err != nil {
		return nil
	}
	dv, err := tfprotov6.NewDynamicValue(p.typ, v)
	if err != nil {
		return nil
	}
	return &tfprotov6.UpgradeResourceStateResponse{UpgradedState: &dv}
}

// plan returns the framework's response to req when the plan shortcut applies, nil otherwise.
func (p *shortcuts) plan(req *tfprotov6.PlanResourceChangeRequest) *tfprotov6.PlanResourceChangeResponse {
	if req.TypeName != applicationType || req.PriorState == nil || req.ProposedNewState == nil || req.Config == nil {
		return nil
	}
	prior, err := req.PriorState.Unmarshal(p.typ)
	if err != nil || prior.IsNull() || !prior.IsFullyKnown() {
		return nil
	}
	proposed, err := req.ProposedNewState.Unmarshal(p.typ)
	if err != nil || !proposed.Equal(prior) {
		return nil
	}
	config, err := req.Config.Unmarshal(p.typ)
	if err != nil {
		return nil
	}
	var priorAttrs, configAttrs map[string]tftypes.Value
	if prior.As(&priorAttrs) != nil || config.As(&configAttrs) != nil {
		return nil
	}
	for name, def := range p.defaults {
		if configAttrs[name].IsNull() && !priorAttrs[name].Equal(def) {
			return nil
		}
	}
	var wait *bool
	if priorAttrs["wait"].As(&wait) != nil || wait == nil || !*wait {
		return nil
	}
	str := func(name string) string {
		var s *string
		if priorAttrs[name].As(&s) != nil || s == nil {
			return ""
		}
		return *s
	}
	if driftReason(str("bundle"), str("synced_revision"), str("sync_status"), true, false) != "" {
		return nil
	}
	return &tfprotov6.PlanResourceChangeResponse{PlannedState: req.ProposedNewState, PlannedPrivate: req.PriorPrivate}
}

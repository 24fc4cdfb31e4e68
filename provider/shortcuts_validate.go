package provider

import (
	"context"
	"fmt"
	"reflect"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

// validation is what the validate shortcut checks of a ferry_application configuration, taken
// from the schema once: Terraform validates every resource of a plan twice (in its validate and
// its plan walk), and the framework's schema validation looks every one of the schema's
// attributes up by path on every call — the largest part of the provider's time in a large
// plan after the refresh (docs/performance.md).
//
// The shortcut answers only "no diagnostics", and only when the framework's answer is certainly
// that too: every required attribute is set, no computed-only attribute is configured, every
// string validator of the schema passes on its value, and ValidateConfig's own check
// (validateApplication) passes. Anything else — a validator's error, an undecodable value — goes
// to the framework, which reports it exactly as it always has. It is built only for a schema
// whose validation it fully knows: validators on string attributes only, no deprecated or
// write-only attribute, no validators on blocks and no nested blocks (TestValidateShortcut).
type validation struct {
	schema   schema.Schema
	required []string // top-level required attributes
	computed []string // top-level computed-only attributes
	strings  []stringValidators
}

// stringValidators are the validators of one string attribute: block "" for a top-level one.
type stringValidators struct {
	block, name string
	path        path.Path
	validators  []validator.String
}

func newValidation(s schema.Schema) (*validation, error) {
	v := &validation{schema: s}
	add := func(block, name string, a schema.Attribute) error {
		at := path.Root(name)
		if block != "" {
			at = path.Root(block).AtName(name)
		}
		if a.GetDeprecationMessage() != "" || a.IsWriteOnly() {
			return fmt.Errorf("shortcuts: %s is deprecated or write-only, which validation does not handle", at)
		}
		if sa, ok := a.(schema.StringAttribute); ok {
			if len(sa.Validators) > 0 {
				v.strings = append(v.strings, stringValidators{block: block, name: name, path: at, validators: sa.Validators})
			}
			return nil
		}
		if f := reflect.ValueOf(a).FieldByName("Validators"); f.IsValid() && f.Len() > 0 {
			return fmt.Errorf("shortcuts: %s has %s validators, which validation does not handle", at, f.Type())
		}
		if block != "" && a.IsRequired() {
			return fmt.Errorf("shortcuts: %s is required inside a block, which validation does not handle", at)
		}
		return nil
	}
	for name, a := range s.Attributes {
		if a.IsRequired() {
			v.required = append(v.required, name)
		}
		if a.IsComputed() && !a.IsOptional() {
			v.computed = append(v.computed, name)
		}
		if n, ok := a.(schema.SingleNestedAttribute); ok {
			// Checked only as a whole (a computed-only one must not be configured): its attributes
			// must bring nothing more to check.
			for nestedName, nested := range n.Attributes {
				f := reflect.ValueOf(nested).FieldByName("Validators")
				if nested.IsRequired() || nested.IsWriteOnly() || nested.GetDeprecationMessage() != "" || (f.IsValid() && f.Len() > 0) || len(n.Validators) > 0 {
					return nil, fmt.Errorf("shortcuts: %s.%s has validation that the validate shortcut does not handle", name, nestedName)
				}
			}
			continue
		}
		if err := add("", name, a); err != nil {
			return nil, err
		}
	}
	for name, b := range s.Blocks {
		nb, ok := b.(schema.SingleNestedBlock)
		if !ok || len(nb.Validators) > 0 || len(nb.Blocks) > 0 || nb.GetDeprecationMessage() != "" {
			return nil, fmt.Errorf("shortcuts: block %s is not a plain single nested block, which validation does not handle", name)
		}
		for attrName, a := range nb.Attributes {
			if err := add(name, attrName, a); err != nil {
				return nil, err
			}
		}
	}
	return v, nil
}

// validate returns the framework's answer to req when the validate shortcut applies, nil otherwise.
func (p *shortcuts) validate(ctx context.Context, req *tfprotov6.ValidateResourceConfigRequest) *tfprotov6.ValidateResourceConfigResponse {
	if req.TypeName != applicationType || req.Config == nil {
		return nil
	}
	config, err := req.Config.Unmarshal(p.typ)
	if err != nil || !config.IsKnown() || config.IsNull() {
		return nil
	}
	var attrs map[string]tftypes.Value
	if config.As(&attrs) != nil {
		return nil
	}
	v := p.validation
	for _, name := range v.required {
		if attrs[name].IsNull() {
			return nil
		}
	}
	for _, name := range v.computed {
		if !attrs[name].IsNull() {
			return nil
		}
	}
	var diags diag.Diagnostics
	cfg := tfsdk.Config{Raw: config, Schema: v.schema}
	for _, sv := range v.strings {
		val := attrs[sv.name]
		if sv.block != "" {
			val = tftypes.NewValue(tftypes.String, nil)
			var block map[string]tftypes.Value
			if b := attrs[sv.block]; !b.IsKnown() {
				return nil
			} else if !b.IsNull() {
				if b.As(&block) != nil {
					return nil
				}
				val = block[sv.name]
			}
		}
		s, ok := stringValue(val)
		if !ok {
			return nil
		}
		for _, vd := range sv.validators {
			var resp validator.StringResponse
			vd.ValidateString(ctx, validator.StringRequest{Path: sv.path, PathExpression: sv.path.Expression(), Config: cfg, ConfigValue: s}, &resp)
			if len(resp.Diagnostics) > 0 {
				return nil
			}
		}
	}
	bundleRef, okB := stringValue(attrs["bundle"])
	policy, okP := stringValue(attrs["window_policy"])
	reason, okR := stringValue(attrs["override_reason"])
	if !okB || !okP || !okR {
		return nil
	}
	if validateApplication(bundleRef, policy, reason, &diags); len(diags) > 0 {
		return nil
	}
	return &tfprotov6.ValidateResourceConfigResponse{}
}

// stringValue converts a Terraform string value to the framework's.
func stringValue(v tftypes.Value) (types.String, bool) {
	switch {
	case !v.IsKnown():
		return types.StringUnknown(), true
	case v.IsNull():
		return types.StringNull(), true
	}
	var s string
	if v.As(&s) != nil {
		return types.String{}, false
	}
	return types.StringValue(s), true
}

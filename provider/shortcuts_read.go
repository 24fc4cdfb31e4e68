package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

// read answers the refresh of a ferry_application, which Terraform asks of every application of
// every plan, with the framework's answer, without its per-call work around Read: copying the
// state four times, walking the whole schema for blocks to nullify, semantic equality and
// write-only attributes (none of which ferry_application has: checked when the shortcut is built,
// by checkReadSchema) — more than three quarters of the call's time in a profile of a 500-application
// plan (docs/performance.md). Read's work itself is shared: refreshApplication, the codec
// (stateToModel and modelToState) and recordSettling.
//
// It answers only after the provider was configured (the framework reports an unconfigured
// provider), for a state that decodes, with private state the framework's format holds without
// any of the framework's own keys (those follow an import). TestReadShortcut compares its
// answers with the framework's on the same live Applications.
func (p *shortcuts) read(ctx context.Context, req *tfprotov6.ReadResourceRequest) *tfprotov6.ReadResourceResponse {
	if req.TypeName != applicationType || req.CurrentState == nil || p.provider == nil {
		return nil
	}
	data := p.provider.configured.Load()
	if data == nil {
		return nil
	}
	private := privateKeys{}
	if len(req.Private) > 0 {
		if json.Unmarshal(req.Private, (*map[string][]byte)(&private)) != nil {
			return nil
		}
		for k, v := range private {
			if strings.HasPrefix(k, ".") || !utf8.Valid(v) || !json.Valid(v) {
				return nil
			}
		}
	}
	state, err := req.CurrentState.Unmarshal(p.typ)
	if err != nil || state.IsNull() {
		return nil
	}
	cd, err := applicationCodec()
	if err != nil {
		return nil
	}
	var m applicationResourceModel
	if cd.decode(ctx, state, &m) != nil {
		return nil
	}

	var diags diag.Diagnostics
	live := refreshApplication(ctx, data, &m, &diags)
	switch {
	case live == nil && !diags.HasError():
		state = tftypes.NewValue(p.typ, nil) // gone: the framework's RemoveResource
	case live != nil:
		if v, err := cd.encode(ctx, &m); err != nil {
			diags.AddError("Unable to Encode State", err.Error())
		} else {
			state = v
		}
		diags.Append(recordSettling(ctx, private, live)...)
	}
	resp := &tfprotov6.ReadResourceResponse{Diagnostics: protoDiagnostics(diags)}
	newState, err := tfprotov6.NewDynamicValue(p.typ, state)
	if err != nil {
		resp.Diagnostics = append(resp.Diagnostics, &tfprotov6.Diagnostic{Severity: tfprotov6.DiagnosticSeverityError, Summary: "Unable to Encode State", Detail: err.Error()})
		return resp
	}
	resp.NewState = &newState
	if len(private) > 0 {
		// As the framework encodes it: a JSON object of the keys with a value (json.Marshal sorts them).
		if resp.Private, err = json.Marshal(map[string][]byte(private)); err != nil {
			resp.Diagnostics = append(resp.Diagnostics, &tfprotov6.Diagnostic{Severity: tfprotov6.DiagnosticSeverityError, Summary: "Error Encoding Private State", Detail: err.Error()})
		}
	}
	return resp
}

// privateKeys is a resource's private state as the framework stores it: each key's value is
// JSON. It is the privateState of the read shortcut.
type privateKeys map[string][]byte

func (p privateKeys) SetKey(_ context.Context, key string, value []byte) diag.Diagnostics {
	if len(value) == 0 {
		delete(p, key)
		return nil
	}
	p[key] = value
	return nil
}

// protoDiagnostics converts diagnostics as the framework does.
func protoDiagnostics(diags diag.Diagnostics) []*tfprotov6.Diagnostic {
	var out []*tfprotov6.Diagnostic
	for _, d := range diags {
		pd := &tfprotov6.Diagnostic{Severity: tfprotov6.DiagnosticSeverityWarning, Summary: d.Summary(), Detail: d.Detail()}
		if d.Severity() == diag.SeverityError {
			pd.Severity = tfprotov6.DiagnosticSeverityError
		}
		if wp, ok := d.(diag.DiagnosticWithPath); ok {
			pd.Attribute = attributePath(wp.Path())
		}
		out = append(out, pd)
	}
	return out
}

// attributePath converts a path of attribute names and element keys to Terraform's.
func attributePath(p path.Path) *tftypes.AttributePath {
	ap := tftypes.NewAttributePath()
	for _, step := range p.Steps() {
		switch s := step.(type) {
		case path.PathStepAttributeName:
			ap = ap.WithAttributeName(string(s))
		case path.PathStepElementKeyString:
			ap = ap.WithElementKeyString(string(s))
		case path.PathStepElementKeyInt:
			ap = ap.WithElementKeyInt(int(s))
		}
	}
	return ap
}

// checkReadSchema refuses a schema with anything the framework does around Read that the read
// shortcut leaves out: write-only attributes and types with semantic equality.
func checkReadSchema(ctx context.Context, s schema.Schema) error {
	semantic := func(name string, t attr.Type) error {
		vt := reflect.TypeOf(t.ValueType(ctx))
		for i := 0; i < vt.NumMethod(); i++ {
			if strings.HasSuffix(vt.Method(i).Name, "SemanticEquals") {
				return fmt.Errorf("shortcuts: %s has semantic equality, which the read shortcut does not handle", name)
			}
		}
		return nil
	}
	var check func(name string, a schema.Attribute) error
	check = func(name string, a schema.Attribute) error {
		if a.IsWriteOnly() {
			return fmt.Errorf("shortcuts: %s is write-only, which the read shortcut does not handle", name)
		}
		if err := semantic(name, a.GetType()); err != nil {
			return err
		}
		if n, ok := a.(schema.SingleNestedAttribute); ok {
			for nestedName, nested := range n.Attributes {
				if err := check(name+"."+nestedName, nested); err != nil {
					return err
				}
			}
		}
		return nil
	}
	for name, a := range s.Attributes {
		if err := check(name, a); err != nil {
			return err
		}
	}
	for name, b := range s.Blocks {
		nb, ok := b.(schema.SingleNestedBlock)
		if !ok {
			return fmt.Errorf("shortcuts: block %s is not a single nested block, which the read shortcut does not handle", name)
		}
		if err := semantic(name, b.Type()); err != nil {
			return err
		}
		for attrName, a := range nb.Attributes {
			if err := check(name+"."+attrName, a); err != nil {
				return err
			}
		}
	}
	return nil
}

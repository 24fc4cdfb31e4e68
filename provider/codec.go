package provider

import (
	"context"
	"fmt"
	"reflect"
	"sync"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

// codec converts between a resource's Terraform value and its model struct (fields tagged
// `tfsdk:"name"`, each an attr.Value or a pointer to the struct of a single nested block) with a
// field plan computed once, where the framework's State.Get and State.Set work the plan out from
// the struct tags on every call (compiling a regular expression per field). Read refreshes every
// application of a plan through it (docs/performance.md); TestCodec compares it with the
// framework's conversion.
type codec struct {
	typ    tftypes.Object
	fields []codecField
}

type codecField struct {
	name   string
	index  int
	typ    attr.Type // an attr.Value field
	nested *codec    // a block's struct pointer
}

// newCodec plans model's conversion (model: a pointer to the struct) for schema s.
func newCodec(ctx context.Context, s schema.Schema, model any) (*codec, error) {
	return planCodec(ctx, s, path.Empty(), s.Type().TerraformType(ctx).(tftypes.Object), reflect.TypeOf(model).Elem())
}

func planCodec(ctx context.Context, s schema.Schema, at path.Path, typ tftypes.Object, t reflect.Type) (*codec, error) {
	c := &codec{typ: typ}
	attrValue := reflect.TypeOf((*attr.Value)(nil)).Elem()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name := f.Tag.Get("tfsdk")
		tfType, ok := typ.AttributeTypes[name]
		if !ok {
			return nil, fmt.Errorf("codec: field %s (%q) is not in the schema at %s", f.Name, name, at)
		}
		field := codecField{name: name, index: i}
		switch {
		case f.Type.Kind() == reflect.Pointer && f.Type.Elem().Kind() == reflect.Struct:
			nestedType, ok := tfType.(tftypes.Object)
			if !ok {
				return nil, fmt.Errorf("codec: field %s is a struct pointer but %s is not an object", f.Name, at.AtName(name))
			}
			nested, err := planCodec(ctx, s, at.AtName(name), nestedType, f.Type.Elem())
			if err != nil {
				return nil, err
			}
			field.nested = nested
		case f.Type.Implements(attrValue):
			attrType, diags := s.TypeAtPath(ctx, at.AtName(name))
			if diags.HasError() {
				return nil, fmt.Errorf("codec: %s: %v", at.AtName(name), diags)
			}
			field.typ = attrType
		default:
			return nil, fmt.Errorf("codec: field %s has type %s, which it does not convert", f.Name, f.Type)
		}
		c.fields = append(c.fields, field)
	}
	if len(c.fields) != len(typ.AttributeTypes) {
		return nil, fmt.Errorf("codec: %s has %d attributes, the model %s %d fields", at, len(typ.AttributeTypes), t, len(c.fields))
	}
	return c, nil
}

// decode sets the struct *model from v, a known object of the codec's type.
func (c *codec) decode(ctx context.Context, v tftypes.Value, model any) error {
	return c.decodeInto(ctx, v, reflect.ValueOf(model).Elem())
}

func (c *codec) decodeInto(ctx context.Context, v tftypes.Value, dst reflect.Value) error {
	var vals map[string]tftypes.Value
	if err := v.As(&vals); err != nil {
		return err
	}
	for _, f := range c.fields {
		fv, val := dst.Field(f.index), vals[f.name]
		if f.nested != nil {
			if val.IsNull() {
				fv.SetZero()
				continue
			}
			if !val.IsKnown() {
				return fmt.Errorf("codec: %s is unknown", f.name)
			}
			n := reflect.New(fv.Type().Elem())
			if err := f.nested.decodeInto(ctx, val, n.Elem()); err != nil {
				return err
			}
			fv.Set(n)
			continue
		}
		av, err := f.typ.ValueFromTerraform(ctx, val)
		if err != nil {
			return fmt.Errorf("codec: %s: %w", f.name, err)
		}
		rv := reflect.ValueOf(av)
		if !rv.Type().AssignableTo(fv.Type()) {
			return fmt.Errorf("codec: %s: a %s is not a %s", f.name, rv.Type(), fv.Type())
		}
		fv.Set(rv)
	}
	return nil
}

// encode returns the Terraform value of the struct *model.
func (c *codec) encode(ctx context.Context, model any) (tftypes.Value, error) {
	return c.encodeFrom(ctx, reflect.ValueOf(model).Elem())
}

func (c *codec) encodeFrom(ctx context.Context, src reflect.Value) (tftypes.Value, error) {
	vals := make(map[string]tftypes.Value, len(c.fields))
	for _, f := range c.fields {
		fv, want := src.Field(f.index), c.typ.AttributeTypes[f.name]
		if f.nested != nil {
			if fv.IsNil() {
				vals[f.name] = tftypes.NewValue(want, nil)
				continue
			}
			v, err := f.nested.encodeFrom(ctx, fv.Elem())
			if err != nil {
				return tftypes.Value{}, err
			}
			vals[f.name] = v
			continue
		}
		v, err := fv.Interface().(attr.Value).ToTerraformValue(ctx)
		if err != nil {
			return tftypes.Value{}, fmt.Errorf("codec: %s: %w", f.name, err)
		}
		if !v.Type().Equal(want) {
			// A zero attr.Value (no element or attribute types) is null.
			if !v.IsNull() {
				return tftypes.Value{}, fmt.Errorf("codec: %s is a %s, the schema says %s", f.name, v.Type(), want)
			}
			v = tftypes.NewValue(want, nil)
		}
		vals[f.name] = v
	}
	return tftypes.NewValue(c.typ, vals), nil
}

// applicationCodec converts ferry_application's state and applicationResourceModel.
var applicationCodec = sync.OnceValues(func() (*codec, error) {
	return newCodec(context.Background(), applicationSchema(), &applicationResourceModel{})
})

// applicationSchema is ferry_application's schema, built once for the codec and the shortcuts.
var applicationSchema = sync.OnceValue(func() schema.Schema {
	var resp resource.SchemaResponse
	NewApplicationResource().Schema(context.Background(), resource.SchemaRequest{}, &resp)
	return resp.Schema
})

// stateToModel and modelToState convert ferry_application's state through applicationCodec:
// Read refreshes every application of a plan, and the framework's struct conversion was most of
// its time (docs/performance.md). Where the codec cannot, the framework converts and reports why.
func stateToModel(ctx context.Context, s tfsdk.State, m *applicationResourceModel) diag.Diagnostics {
	if cd, err := applicationCodec(); err == nil && cd.decode(ctx, s.Raw, m) == nil {
		return nil
	}
	*m = applicationResourceModel{}
	return s.Get(ctx, m)
}

func modelToState(ctx context.Context, m *applicationResourceModel, s *tfsdk.State) diag.Diagnostics {
	if cd, err := applicationCodec(); err == nil {
		if raw, err := cd.encode(ctx, m); err == nil {
			s.Raw = raw
			return nil
		}
	}
	return s.Set(ctx, m)
}

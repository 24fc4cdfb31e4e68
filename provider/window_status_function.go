package provider

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/function"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-framework/types/basetypes"

	"github.com/ferry-dev/terraform-provider-ferry/internal/window"
)

var _ function.Function = (*windowStatusFunction)(nil)

// NewWindowStatusFunction returns provider::ferry::window_status.
func NewWindowStatusFunction() function.Function { return &windowStatusFunction{} }

type windowStatusFunction struct{}

var windowStatusAttrTypes = map[string]attr.Type{
	"open": types.BoolType, "reason": types.StringType, "next_open": types.StringType, "next_close": types.StringType,
}

func (f *windowStatusFunction) Metadata(_ context.Context, _ function.MetadataRequest, resp *function.MetadataResponse) {
	resp.Name = "window_status"
}

func (f *windowStatusFunction) Definition(_ context.Context, _ function.DefinitionRequest, resp *function.DefinitionResponse) {
	resp.Definition = function.Definition{
		Summary: "Whether deployment windows are open at a time, why, and when they next open and close.",
		MarkdownDescription: "Evaluates deployment windows with Argo CD sync-window semantics for a manual sync (what ferry does) at " +
			"`timestamp`. Pure: usable in `check` blocks, preconditions and outputs, e.g. " +
			"`provider::ferry::window_status(ferry_environment.acme.deployment_window, plantimestamp())`. Returns " +
			"`open`, `reason`, and `next_open` / `next_close` (RFC 3339, null when not within five years).",
		Parameters: []function.Parameter{
			function.DynamicParameter{
				Name: "windows",
				MarkdownDescription: "A list of windows shaped like `deployment_window` blocks: objects with `kind`, `schedule`, `duration` " +
					"and optional `time_zone`, `manual_sync`, `description`.",
			},
			function.StringParameter{Name: "timestamp", MarkdownDescription: "The time to evaluate, RFC 3339 (e.g. `plantimestamp()`)."},
		},
		Return: function.ObjectReturn{AttributeTypes: windowStatusAttrTypes},
	}
}

func (f *windowStatusFunction) Run(ctx context.Context, req function.RunRequest, resp *function.RunResponse) {
	var windows types.Dynamic
	var ts string
	resp.Error = function.ConcatFuncErrors(resp.Error, req.Arguments.Get(ctx, &windows, &ts))
	if resp.Error != nil {
		return
	}
	at, err := time.Parse(time.RFC3339, ts)
	if err != nil {
		resp.Error = function.NewArgumentFuncError(1, fmt.Sprintf("timestamp %q is not RFC 3339, e.g. 2026-11-26T10:00:00Z", ts))
		return
	}
	specs, err := dynamicWindows(windows.UnderlyingValue())
	if err != nil {
		resp.Error = function.NewArgumentFuncError(0, err.Error())
		return
	}
	ws, err := window.Parse(specs, func(i int) string { return fmt.Sprintf("windows[%d]", i) })
	if err != nil {
		resp.Error = function.NewArgumentFuncError(0, err.Error())
		return
	}
	st := window.Evaluate(ws, at, true)
	timeOrNull := func(t *time.Time) types.String {
		if t == nil {
			return types.StringNull()
		}
		return types.StringValue(t.UTC().Format(time.RFC3339))
	}
	out, diags := types.ObjectValue(windowStatusAttrTypes, map[string]attr.Value{
		"open": types.BoolValue(st.Open), "reason": types.StringValue(st.Reason),
		"next_open": timeOrNull(st.NextOpen), "next_close": timeOrNull(st.NextClose),
	})
	if diags.HasError() {
		resp.Error = function.FuncErrorFromDiags(ctx, diags)
		return
	}
	resp.Error = function.ConcatFuncErrors(resp.Error, resp.Result.Set(ctx, out))
}

// dynamicWindows reads a list, tuple or set of objects or maps into window specs.
func dynamicWindows(v attr.Value) ([]window.Spec, error) {
	var elems []attr.Value
	switch l := v.(type) {
	case nil:
		return nil, nil
	case basetypes.ListValue:
		elems = l.Elements()
	case basetypes.TupleValue:
		elems = l.Elements()
	case basetypes.SetValue:
		elems = l.Elements()
	default:
		if v.IsNull() {
			return nil, nil
		}
		return nil, fmt.Errorf("windows must be a list of objects, got %s", v.Type(context.Background()))
	}
	var specs []window.Spec
	for i, e := range elems {
		var attrs map[string]attr.Value
		switch o := e.(type) {
		case basetypes.ObjectValue:
			attrs = o.Attributes()
		case basetypes.MapValue:
			attrs = o.Elements()
		default:
			return nil, fmt.Errorf("windows[%d] must be an object with kind, schedule and duration", i)
		}
		s := window.Spec{}
		for name, av := range attrs {
			if av.IsNull() || av.IsUnknown() {
				continue
			}
			switch name {
			case "kind", "schedule", "duration", "time_zone", "description":
				sv, ok := av.(basetypes.StringValue)
				if !ok {
					return nil, fmt.Errorf("windows[%d].%s must be a string", i, name)
				}
				switch name {
				case "kind":
					s.Kind = sv.ValueString()
				case "schedule":
					s.Schedule = sv.ValueString()
				case "duration":
					s.Duration = sv.ValueString()
				case "time_zone":
					s.TimeZone = sv.ValueString()
				case "description":
					s.Description = sv.ValueString()
				}
			case "manual_sync":
				switch b := av.(type) {
				case basetypes.BoolValue:
					s.ManualSync = b.ValueBool()
				case basetypes.StringValue:
					s.ManualSync = b.ValueString() == "true"
				default:
					return nil, fmt.Errorf("windows[%d].manual_sync must be a bool", i)
				}
			default:
				return nil, fmt.Errorf("windows[%d] has an unknown attribute %q; use kind, schedule, duration, time_zone, manual_sync, description", i, name)
			}
		}
		specs = append(specs, s)
	}
	return specs, nil
}

// Command schemafloor serves ferry's real provider schema with every per-resource call of a plan
// for ferry_application reduced to the least any provider must do: decode the object Terraform
// sent and encode it back. Validate accepts, Upgrade and Read return the state as stored, Plan
// returns the proposed state; the process is tuned exactly as ferry's binary
// (provider.TuneProcess). Used only by BenchmarkPlanRefresh (provider/bench_test.go): its plan of
// the same 500 applications is the floor that ferry_application's schema, as the issue specifies
// it, costs Terraform itself whatever the provider does.
package main

import (
	"context"
	"log"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6/tf6server"
	"github.com/hashicorp/terraform-plugin-go/tftypes"

	"github.com/ferry-dev/terraform-provider-ferry/provider"
)

const resourceType = "ferry_application"

func main() {
	provider.TuneProcess() // as ferry's binary: same logging and garbage collector settings
	fw := providerserver.NewProtocol6(provider.New("schemafloor")())()
	s, err := fw.GetProviderSchema(context.Background(), &tfprotov6.GetProviderSchemaRequest{})
	if err != nil {
		log.Fatal(err)
	}
	typ := s.ResourceSchemas[resourceType].ValueType()
	if err := tf6server.Serve("registry.terraform.io/ferry-dev/ferry", func() tfprotov6.ProviderServer { return floor{fw, typ} }); err != nil {
		log.Fatal(err)
	}
}

// floor is ferry's framework server with ferry_application's plan-time calls replaced.
type floor struct {
	tfprotov6.ProviderServer
	typ tftypes.Type
}

// echo decodes a value Terraform sent and encodes it again.
func (f floor) echo(v *tfprotov6.DynamicValue) (*tfprotov6.DynamicValue, error) {
	val, err := v.Unmarshal(f.typ)
	if err != nil {
		return nil, err
	}
	dv, err := tfprotov6.NewDynamicValue(f.typ, val)
	return &dv, err
}

func (f floor) ValidateResourceConfig(ctx context.Context, req *tfprotov6.ValidateResourceConfigRequest) (*tfprotov6.ValidateResourceConfigResponse, error) {
	if req.TypeName != resourceType {
		return f.ProviderServer.ValidateResourceConfig(ctx, req)
	}
	_, err := f.echo(req.Config)
	return &tfprotov6.ValidateResourceConfigResponse{}, err
}

func (f floor) UpgradeResourceState(ctx context.Context, req *tfprotov6.UpgradeResourceStateRequest) (*tfprotov6.UpgradeResourceStateResponse, error) {
	if req.TypeName != resourceType {
		return f.ProviderServer.UpgradeResourceState(ctx, req)
	}
	val, err := req.RawState.UnmarshalWithOpts(f.typ, tfprotov6.UnmarshalOpts{})
	if err != nil {
		return nil, err
	}
	dv, err := tfprotov6.NewDynamicValue(f.typ, val)
	return &tfprotov6.UpgradeResourceStateResponse{UpgradedState: &dv}, err
}

func (f floor) ReadResource(ctx context.Context, req *tfprotov6.ReadResourceRequest) (*tfprotov6.ReadResourceResponse, error) {
	if req.TypeName != resourceType {
		return f.ProviderServer.ReadResource(ctx, req)
	}
	dv, err := f.echo(req.CurrentState)
	return &tfprotov6.ReadResourceResponse{NewState: dv, Private: req.Private}, err
}

func (f floor) PlanResourceChange(ctx context.Context, req *tfprotov6.PlanResourceChangeRequest) (*tfprotov6.PlanResourceChangeResponse, error) {
	if req.TypeName != resourceType {
		return f.ProviderServer.PlanResourceChange(ctx, req)
	}
	dv, err := f.echo(req.ProposedNewState)
	return &tfprotov6.PlanResourceChangeResponse{PlannedState: dv, PlannedPrivate: req.PriorPrivate}, err
}

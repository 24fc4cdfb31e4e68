// Command terraform-provider-ferry serves the ferry Terraform provider (protocol 6).
package main

import (
	// Zone data built in, so deployment windows work on hosts without a zone database.
	_ "time/tzdata"

	"flag"
	"log"

	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6/tf6server"

	"github.com/ferry-dev/terraform-provider-ferry/internal/version"
	"github.com/ferry-dev/terraform-provider-ferry/provider"
)

// Address is the provider's registry address.
const address = "registry.terraform.io/ferry-dev/ferry"

func main() {
	var debug bool
	flag.BoolVar(&debug, "debug", false, "run with support for debuggers like delve")
	flag.Parse()
	provider.TuneProcess()
	var opts []tf6server.ServeOpt
	if debug {
		opts = append(opts, tf6server.WithManagedDebug())
	}
	serve, err := provider.NewServer(version.Get())()
	if err != nil {
		log.Fatal(err)
	}
	if err := tf6server.Serve(address, func() tfprotov6.ProviderServer { return serve }, opts...); err != nil {
		log.Fatal(err)
	}
}

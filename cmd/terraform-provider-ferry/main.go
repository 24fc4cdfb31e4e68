// Command terraform-provider-ferry serves the ferry Terraform provider (protocol 6).
package main

import (
	// Zone data built in, so deployment windows work on hosts without a zone database.
	_ "time/tzdata"

	"context"
	"flag"
	"log"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"

	"github.com/ferry-dev/terraform-provider-ferry/provider"
)

// version is set through -ldflags "-X main.version=…" by releases.
var version = "dev"

// Address is the provider's registry address.
const address = "registry.terraform.io/ferry-dev/ferry"

func main() {
	var debug bool
	flag.BoolVar(&debug, "debug", false, "run with support for debuggers like delve")
	flag.Parse()
	if err := providerserver.Serve(context.Background(), provider.New(version), providerserver.ServeOpts{
		Address: address,
		Debug:   debug,
	}); err != nil {
		log.Fatal(err)
	}
}

// Command terraform-provider-ferry serves the ferry Terraform provider (protocol 6).
package main

import (
	// Zone data built in, so deployment windows work on hosts without a zone database.
	_ "time/tzdata"

	"flag"
	"log"
	"os"
	"runtime/debug"
	"strings"

	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6/tf6server"

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
	tune()
	var opts []tf6server.ServeOpt
	if debug {
		opts = append(opts, tf6server.WithManagedDebug())
	}
	serve, err := provider.NewServer(version)()
	if err != nil {
		log.Fatal(err)
	}
	if err := tf6server.Serve(address, func() tfprotov6.ProviderServer { return serve }, opts...); err != nil {
		log.Fatal(err)
	}
}

// tune trades memory for CPU where Terraform cannot see the difference. A plan calls the provider
// several times per resource, and with hundreds of applications the plugin framework's per-call
// work dominates (docs/performance.md):
//   - Without any TF_LOG* variable Terraform discards every provider log line, so the SDK and
//     provider loggers are turned off instead of formatting trace lines for nothing. Set TF_LOG (or
//     TF_LOG_PROVIDER, TF_LOG_SDK_*) and they log as usual.
//   - Unless GOGC is set, the garbage collector runs at a quarter of the default frequency: a plan's
//     live heap is a few MiB.
func tune() {
	logging := false
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "TF_LOG") {
			logging = true
			break
		}
	}
	if !logging {
		os.Setenv("TF_LOG_SDK", "OFF")
		os.Setenv("TF_LOG_PROVIDER", "OFF")
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
}

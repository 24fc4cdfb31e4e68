// Command ferry packs release candidates into OCI bundles and deploys them with Argo CD.
package main

import (
	// Zone data built in, so deployment windows work on hosts without a zone database.
	_ "time/tzdata"

	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/ferry-dev/terraform-provider-ferry/cmd/ferry/internal/option"
	"github.com/ferry-dev/terraform-provider-ferry/cmd/ferry/root"
)

// version is set through -ldflags "-X main.version=…".
var version = "dev"

func main() { os.Exit(run()) }

func run() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmd := root.New(version)
	if err := cmd.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, option.FormatError(err))
		return option.ExitCode(err)
	}
	return 0
}

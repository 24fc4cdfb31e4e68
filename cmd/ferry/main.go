// Command ferry packs release candidates into OCI bundles and deploys them with Argo CD.
package main

import (
	// Zone data built in, so deployment windows work on hosts without a zone database.
	_ "time/tzdata"

	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/ferry-dev/terraform-provider-ferry/bundle"
	"github.com/ferry-dev/terraform-provider-ferry/cmd/ferry/internal/option"
	"github.com/ferry-dev/terraform-provider-ferry/cmd/ferry/root"
	"github.com/ferry-dev/terraform-provider-ferry/internal/version"
)

func main() { os.Exit(run()) }

func run() int {
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-signals
		signal.Stop(signals) // a second Ctrl-C ends ferry at once, without the clean-up
		cancel(&option.Interrupted{Signal: s.(syscall.Signal)})
	}()
	err := root.New(version.Get()).ExecuteContext(ctx)
	if err != nil && ctx.Err() != nil {
		// Whatever the cancellation broke ("registry unreachable: … context canceled") is not the
		// reason ferry stopped: the signal is (exit 130 for SIGINT, 143 for SIGTERM). What a push did
		// to its tags on the way out is kept.
		var tags *bundle.TagsError
		if in, ok := context.Cause(ctx).(*option.Interrupted); ok && errors.As(err, &tags) {
			err = &option.Interrupted{Signal: in.Signal, Outcome: tags.Outcome()}
		} else {
			err = context.Cause(ctx)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, option.FormatError(err))
		return option.ExitCode(err)
	}
	return 0
}

// Package root builds ferry's command tree.
package root

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ferry-dev/terraform-provider-ferry/cmd/ferry/internal/option"
	"github.com/ferry-dev/terraform-provider-ferry/cmd/ferry/root/app"
	"github.com/ferry-dev/terraform-provider-ferry/cmd/ferry/root/bundle"
	"github.com/ferry-dev/terraform-provider-ferry/cmd/ferry/root/window"
)

// New returns the root command.
func New(version string) *cobra.Command {
	cmd := &cobra.Command{
		Use:           "ferry",
		Short:         "Ship release candidates as one OCI bundle and deploy them per customer with Argo CD",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
	}
	cmd.AddCommand(bundle.New(), app.New(), window.New(), loginCmd(), logoutCmd(), versionCmd(version))
	cmd.InitDefaultCompletionCmd() // now rather than at Execute, so usageErrors reaches it too
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageError(c, c.UseLine(), err) })
	usageErrors(cmd)
	return cmd
}

// usageErrors makes every command-line mistake under cmd a usage error (exit 2) that shows the
// command's usage: an unknown command, a wrong number of arguments, a missing required flag (unknown
// flags go through the root's flag error function). Cobra returns these as plain errors, and for an
// unknown subcommand of a command group it even prints the help and exits 0. A group called alone
// still prints its help.
func usageErrors(cmd *cobra.Command) {
	if cmd.HasSubCommands() && !cmd.Runnable() {
		cmd.Args = unknownCommand
		cmd.RunE = func(c *cobra.Command, _ []string) error { return c.Help() }
		if cmd.SuggestionsMinimumDistance <= 0 {
			cmd.SuggestionsMinimumDistance = 2
		}
	} else if args := cmd.Args; args != nil {
		cmd.Args = func(c *cobra.Command, a []string) error {
			if err := args(c, a); err != nil {
				return usageError(c, c.UseLine(), err)
			}
			return nil
		}
	}
	if cmd.Runnable() {
		// Cobra checks required flags only after PreRunE, with a plain error: check them first.
		preRun := cmd.PreRunE
		cmd.PreRunE = func(c *cobra.Command, a []string) error {
			if err := c.ValidateRequiredFlags(); err != nil {
				return usageError(c, c.UseLine(), err)
			}
			if err := c.ValidateFlagGroups(); err != nil {
				return usageError(c, c.UseLine(), err)
			}
			if preRun != nil {
				return preRun(c, a)
			}
			return nil
		}
	}
	for _, sub := range cmd.Commands() {
		usageErrors(sub)
	}
}

// unknownCommand is the argument check of a command group: any argument is an unknown command.
func unknownCommand(c *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	err := fmt.Errorf("unknown command %q for %q", args[0], c.CommandPath())
	if s := c.SuggestionsFor(args[0]); len(s) > 0 {
		return option.Usagef(c.CommandPath()+" COMMAND", fmt.Sprintf("Did you mean %s %s? Run '%s --help' for the commands.",
			c.CommandPath(), strings.Join(s, " or "+c.CommandPath()+" "), c.CommandPath()), err)
	}
	return usageError(c, c.CommandPath()+" COMMAND", err)
}

func usageError(c *cobra.Command, usage string, err error) error {
	return option.Usagef(usage, fmt.Sprintf("Run '%s --help' for usage.", c.CommandPath()), err)
}

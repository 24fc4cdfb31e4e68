// Package root builds ferry's command tree.
package root

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ferry-dev/terraform-provider-ferry/cmd/ferry/internal/option"
	"github.com/ferry-dev/terraform-provider-ferry/cmd/ferry/root/app"
	"github.com/ferry-dev/terraform-provider-ferry/cmd/ferry/root/bundle"
	"github.com/ferry-dev/terraform-provider-ferry/cmd/ferry/root/fleet"
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
	cmd.AddCommand(bundle.New(), app.New(), window.New(), fleet.New(), loginCmd(), logoutCmd(), versionCmd(version))
	cmd.InitDefaultCompletionCmd() // now rather than at Execute, so usageErrors reaches it too
	cmd.InitDefaultHelpCmd()
	helpTopics(cmd)
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageError(c, c.UseLine(), flagValueError(err)) })
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

// helpTopics makes `ferry help TOPIC` of an unknown topic a usage error with the commands it may
// mean: cobra prints the root help and exits 0, which a script reads as success.
func helpTopics(root *cobra.Command) {
	var help *cobra.Command
	for _, c := range root.Commands() {
		if c.Name() == "help" {
			help = c
		}
	}
	if help == nil || help.Run == nil {
		return
	}
	run := help.Run
	help.Run = nil
	help.RunE = func(c *cobra.Command, args []string) error {
		target, rest, err := c.Root().Find(args)
		// Arguments left over after a command that takes them are its own; after a group they
		// name no command.
		if err == nil && target != nil && (len(rest) == 0 || !target.HasSubCommands()) {
			run(c, args)
			return nil
		}
		topic := strings.Join(args, " ")
		err = fmt.Errorf("unknown help topic %q", topic)
		var word string
		if len(rest) > 0 {
			word = rest[0]
		} else {
			word = args[len(args)-1]
		}
		if target == nil {
			target = c.Root()
		}
		if s := topicSuggestions(target, word); len(s) > 0 {
			return option.Usagef("ferry help [COMMAND]", fmt.Sprintf("Did you mean ferry help %s? Run 'ferry help' for the commands.", strings.Join(s, " or ferry help ")), err)
		}
		return option.Usagef("ferry help [COMMAND]", "Run 'ferry help' for the commands.", err)
	}
}

// topicSuggestions returns the commands word may mean, as paths below the root ("bundle push"):
// the subcommands of cmd close to it, else those of any group of the tree.
func topicSuggestions(cmd *cobra.Command, word string) []string {
	path := func(c *cobra.Command) string {
		return strings.TrimPrefix(c.CommandPath(), c.Root().CommandPath()+" ")
	}
	var out []string
	add := func(group *cobra.Command) {
		for _, name := range group.SuggestionsFor(word) {
			if sub, _, err := group.Find([]string{name}); err == nil && sub != group {
				out = append(out, path(sub))
			}
		}
	}
	add(cmd)
	if len(out) > 0 {
		return out
	}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.HasSubCommands() {
			add(c)
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(cmd.Root())
	return out
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

// flagValueError rewrites pflag's `invalid argument "5" for "--timeout" flag: time: missing unit in
// duration "5"` as "--timeout 5: " and what to write instead; other flag errors are returned as they
// are.
func flagValueError(err error) error {
	var invalid *pflag.InvalidValueError
	if !errors.As(err, &invalid) {
		return err
	}
	name, value, cause := "--"+invalid.GetFlag().Name, invalid.GetValue(), errors.Unwrap(invalid)
	what := cause.Error() // a flag type of ours (option.SizeVar) says what to write
	switch invalid.GetFlag().Value.Type() {
	case "duration":
		what = "not a duration; write a number with a unit, e.g. 90s, 5m or 1h30m"
		if strings.Contains(cause.Error(), "missing unit") {
			what = "missing unit; use a unit, e.g. " + value + "s or " + value + "m"
		}
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		what = "not a whole number"
		if errors.Is(cause, strconv.ErrRange) {
			what = "out of range"
		}
	case "bool":
		what = "not a boolean; write true or false"
	}
	return fmt.Errorf("%s %s: %s", name, value, what)
}

func usageError(c *cobra.Command, usage string, err error) error {
	return option.Usagef(usage, fmt.Sprintf("Run '%s --help' for usage.", c.CommandPath()), err)
}

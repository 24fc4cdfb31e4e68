package root

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"

	"github.com/ferry-dev/terraform-provider-ferry/bundle"
	"github.com/ferry-dev/terraform-provider-ferry/cmd/ferry/internal/option"
)

type loginOptions struct {
	option.Remote
	host          string
	username      string
	password      string
	passwordStdin bool
}

func loginCmd() *cobra.Command {
	var opts loginOptions
	cmd := &cobra.Command{
		Use:   "login HOST",
		Short: "Log in to a registry and store the credential like docker and oras do",
		Long: `Log in to a registry. The credential is checked against the registry, then stored in
~/.docker/config.json or its credential helper, where docker, oras and ferry all find it.

Example - Log in with the password on standard input:
  echo "$TOKEN" | ferry login ghcr.io -u ci-bot --password-stdin`,
		Args: cobra.ExactArgs(1),
		PreRunE: func(cmd *cobra.Command, args []string) error {
			opts.host = args[0]
			if opts.username == "" {
				return option.Usagef("ferry login HOST -u USERNAME (-p PASSWORD | --password-stdin)", "", errors.New("--username is required"))
			}
			if opts.password != "" && opts.passwordStdin {
				return option.Usagef("ferry login HOST -u USERNAME (-p PASSWORD | --password-stdin)", "", errors.New("--password and --password-stdin are mutually exclusive"))
			}
			return opts.Remote.Parse(cmd)
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.passwordStdin || opts.password == "" {
				p, err := readSecret(cmd.InOrStdin())
				if err != nil {
					return err
				}
				opts.password = p
			}
			return runLogin(cmd, &opts)
		},
	}
	cmd.Flags().StringVarP(&opts.username, "username", "u", "", "registry username")
	cmd.Flags().StringVarP(&opts.password, "password", "p", "", "registry password or token (prefer --password-stdin)")
	cmd.Flags().BoolVar(&opts.passwordStdin, "password-stdin", false, "read the password from standard input")
	opts.Remote.ApplyFlags(cmd.Flags())
	return cmd
}

func readSecret(r io.Reader) (string, error) {
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", option.Usagef("", "pass it with --password-stdin", errors.New("the password is empty"))
	}
	return line, nil
}

func runLogin(cmd *cobra.Command, opts *loginOptions) error {
	store, err := bundle.DockerCredentialStore()
	if err != nil {
		return err
	}
	client, err := opts.Remote.Client()
	if err != nil {
		return err
	}
	reg, err := client.Registry(opts.host)
	if err != nil {
		return err
	}
	if err := credentials.Login(cmd.Context(), store, reg, auth.Credential{Username: opts.username, Password: opts.password}); err != nil {
		return fmt.Errorf("login to %s: %w", opts.host, err)
	}
	_, err = fmt.Fprintln(cmd.OutOrStdout(), "Login succeeded")
	return err
}

func logoutCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "logout HOST",
		Short: "Remove the stored credential of a registry",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			store, err := bundle.DockerCredentialStore()
			if err != nil {
				return err
			}
			if err := credentials.Logout(cmd.Context(), store, args[0]); err != nil {
				return fmt.Errorf("logout from %s: %w", args[0], err)
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), "Removed the credential of", args[0])
			return err
		},
	}
}

package root

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"

	"github.com/ferry-dev/terraform-provider-ferry/bundle"
	"github.com/ferry-dev/terraform-provider-ferry/cmd/ferry/internal/option"
)

// EnvRegistryPassword is the environment variable `ferry login` takes the password from when neither
// --password-stdin nor -p gives it.
const EnvRegistryPassword = "FERRY_REGISTRY_PASSWORD"

const loginUsage = "ferry login HOST -u USERNAME [--password-stdin]"

type loginOptions struct {
	option.Remote
	host     string
	username string
	password option.Secret
}

func loginCmd() *cobra.Command {
	opts := loginOptions{password: option.Secret{Name: "password", Short: "p", Env: EnvRegistryPassword, What: "registry password or token", Label: "Password"}}
	cmd := &cobra.Command{
		Use:   "login HOST -u USERNAME",
		Short: "Log in to a registry and store the credential like docker and oras do",
		Long: `Log in to a registry. The credential is checked against the registry, then stored in
~/.docker/config.json or its credential helper, where docker, oras and ferry all find it.

The password comes from standard input with --password-stdin, else from $` + EnvRegistryPassword + `,
else from a prompt on the terminal that does not echo it. -p PASSWORD works too but is discouraged:
other users see it in ps, and it stays in the shell history.

Example - Log in with the password on standard input:
  printenv TOKEN | ferry login ghcr.io -u ci-bot --password-stdin`,
		Args: cobra.ExactArgs(1),
		PreRunE: func(cmd *cobra.Command, args []string) error {
			opts.host = args[0]
			if opts.username == "" {
				return option.Usagef(loginUsage, "", errors.New("--username is required"))
			}
			return opts.Remote.Parse(cmd)
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			password, err := opts.password.Value(cmd)
			if err == nil && password == "" {
				password, err = opts.password.Prompt(cmd)
			}
			if err != nil {
				return err
			}
			return runLogin(cmd, &opts, password)
		},
	}
	cmd.Flags().StringVarP(&opts.username, "username", "u", "", "registry username")
	opts.password.ApplyFlags(cmd.Flags())
	opts.Remote.ApplyFlags(cmd.Flags())
	return cmd
}

func runLogin(cmd *cobra.Command, opts *loginOptions, password string) error {
	store, err := bundle.DockerCredentialStore()
	if err != nil {
		return err
	}
	client, err := opts.Remote.Client(opts.host)
	if err != nil {
		return err
	}
	if err := client.Login(cmd.Context(), store, opts.host, auth.Credential{Username: opts.username, Password: password}); err != nil {
		err = bundle.WrapRegistryError("login to "+opts.host, err)
		if errors.Is(err, bundle.ErrUnauthorized) {
			// The generic advice is to log in, which is what failed.
			return &option.Error{Err: err, Code: option.ExitPermanent,
				Recommendation: "Check the username and the password or token for " + opts.host + "; nothing was stored."}
		}
		return err
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
			// Like docker, nothing to remove is no failure; but saying it was removed would hide a
			// misspelled host.
			cred, err := store.Get(cmd.Context(), credentials.ServerAddressFromRegistry(args[0]))
			if err == nil && cred == auth.EmptyCredential {
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "Not logged in to %s: no credential was stored for it\n", args[0])
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

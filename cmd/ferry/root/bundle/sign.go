package bundle

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/ferry-dev/terraform-provider-ferry/bundle"
	"github.com/ferry-dev/terraform-provider-ferry/cmd/ferry/internal/display"
	"github.com/ferry-dev/terraform-provider-ferry/cmd/ferry/internal/option"
)

const (
	signUsage   = "ferry bundle sign REF --key FILE"
	verifyUsage = "ferry bundle verify REF --key FILE [--key FILE]... [--require-attestation NAME]..."
)

type signOptions struct {
	option.Remote
	option.Format
	ref bundle.Reference
	key option.SignKey
}

func signCmd() *cobra.Command {
	opts := signOptions{key: option.SignKey{Name: "key"}}
	cmd := &cobra.Command{
		Use:   "sign REF --key FILE",
		Short: "Sign a pushed bundle and attach the signature as an OCI referrer",
		Long: `Sign the bundle REF names (a tag is resolved to the digest it points at now) and attach the
signature to its manifest as an OCI 1.1 referrer: a Sigstore bundle, as cosign writes it, that
` + "`cosign verify --key cosign.pub --insecure-ignore-tlog=true`" + ` and ` + "`ferry bundle verify`" + ` check
offline. The key is a private key in cosign's encrypted format; its password comes from standard
input with --key-password-stdin, else from $` + option.EnvKeyPassword + `, else from $COSIGN_PASSWORD. The
bundle's digest does not change. ` + "`ferry bundle push --sign-key`" + ` signs at push, before any tag moves.

Example - Sign the bundle a tag points at (the key's password in $FERRY_KEY_PASSWORD):
  ferry bundle sign registry.example.com/shop/bundle:1.4.0 --key cosign.key`,
		Args: cobra.ExactArgs(1),
		PreRunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if opts.ref, err = parseRef(args[0], signUsage); err != nil {
				return err
			}
			if err := opts.Format.Parse(cmd); err != nil {
				return err
			}
			return opts.Remote.Parse(cmd)
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			key, err := opts.key.Load(cmd)
			if err != nil {
				return err
			}
			if key == nil {
				return option.Usagef(signUsage, "", errors.New("--key is required"))
			}
			client, err := opts.Remote.Client(opts.ref.Registry)
			if err != nil {
				return err
			}
			res, err := bundle.Sign(cmd.Context(), client, opts.ref, key)
			if err != nil {
				return err
			}
			return opts.Format.Render(cmd.OutOrStdout(), res, func(w io.Writer) error { return display.SignText(w, res) })
		},
	}
	opts.key.ApplyFlags(cmd.Flags(), "private key to sign with")
	opts.Remote.ApplyFlags(cmd.Flags())
	opts.Format.ApplyFlags(cmd.Flags())
	return cmd
}

type verifyOptions struct {
	option.Remote
	option.Format
	ref     bundle.Reference
	keys    []string
	require []string
}

func verifyCmd() *cobra.Command {
	var opts verifyOptions
	cmd := &cobra.Command{
		Use:   "verify REF --key FILE",
		Short: "Verify a bundle's signature against trusted public keys",
		Long: `Verify that the bundle REF names (a tag is resolved to the digest it points at now) carries a
signature, by one of the trusted public keys, of exactly that digest; print who signed it. Several
--key flags trust several keys at once (key rotation). Signatures written by ferry and by cosign
(` + "`cosign sign --key`" + `, Sigstore bundle format) are both read, and so are attestations
(` + "`ferry bundle push --sign-key`" + ` attaches an SBOM and a SLSA provenance; ` + "`cosign attest`" + `):
--require-attestation sbom|provenance|PREDICATE-TYPE-URI requires one, signed by a trusted key.
Each failure has its own exit code: 10 not signed, 11 a signature that does not verify, 12
signed by no trusted key, 13 a signature for another digest, 14 a required attestation missing
(docs/signing.md).

Example - Verify with the current and the previous release key:
  ferry bundle verify registry.example.com/shop/bundle:1.4.0 --key cosign.pub --key release-2025.pub

Example - Also require the SBOM and the provenance that a signed push attaches:
  ferry bundle verify registry.example.com/shop/bundle:1.4.0 --key cosign.pub --require-attestation sbom --require-attestation provenance`,
		Args: cobra.ExactArgs(1),
		PreRunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if opts.ref, err = parseRef(args[0], verifyUsage); err != nil {
				return err
			}
			if len(opts.keys) == 0 {
				return option.Usagef(verifyUsage, "Give the public key(s) to trust, e.g. --key cosign.pub.", errors.New("--key is required"))
			}
			if _, err := bundle.AttestationTypes(opts.require); err != nil {
				return option.Usagef(verifyUsage, "", fmt.Errorf("--require-attestation: %w", err))
			}
			if err := opts.Format.Parse(cmd); err != nil {
				return err
			}
			return opts.Remote.Parse(cmd)
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			require, _ := bundle.AttestationTypes(opts.require)
			keys, err := bundle.LoadTrustedKeys(opts.keys...)
			if err != nil {
				return option.Usagef(verifyUsage, "", err)
			}
			client, err := opts.Remote.Client(opts.ref.Registry)
			if err != nil {
				return err
			}
			res, err := bundle.Verify(cmd.Context(), client, opts.ref, keys, require...)
			if err != nil {
				return err
			}
			return opts.Format.Render(cmd.OutOrStdout(), res, func(w io.Writer) error { return display.VerifyText(w, res) })
		},
	}
	cmd.Flags().StringArrayVar(&opts.keys, "key", nil, "trusted public key, PEM (cosign.pub); repeatable")
	cmd.Flags().StringArrayVar(&opts.require, "require-attestation", nil, "required attestation, signed by a trusted key: sbom, provenance or a predicate type URI; repeatable")
	opts.Remote.ApplyFlags(cmd.Flags())
	opts.Format.ApplyFlags(cmd.Flags())
	return cmd
}

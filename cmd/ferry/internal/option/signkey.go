package option

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ferry-dev/terraform-provider-ferry/bundle"
)

// EnvKeyPassword is the environment variable the signing key's password is read from; cosign's
// COSIGN_PASSWORD is read when it is not set.
const EnvKeyPassword = "FERRY_KEY_PASSWORD"

// SignKey is a private signing key in cosign's encrypted format (--NAME FILE) and its password,
// from the first line of standard input (--NAME-password-stdin), $FERRY_KEY_PASSWORD or
// $COSIGN_PASSWORD — never from the command line, where other users see it in ps.
type SignKey struct {
	Name string // the flag, e.g. "sign-key"

	path  string
	stdin bool
}

// ApplyFlags registers --NAME and --NAME-password-stdin.
func (k *SignKey) ApplyFlags(fs *pflag.FlagSet, usage string) {
	fs.StringVar(&k.path, k.Name, "", usage+" (cosign's encrypted key format, e.g. from cosign generate-key-pair)")
	fs.BoolVar(&k.stdin, k.Name+"-password-stdin", false, "read the key's password from the first line of standard input (else $"+EnvKeyPassword+", else $COSIGN_PASSWORD)")
}

// Load returns the key, or nil when --NAME is not given.
func (k *SignKey) Load(cmd *cobra.Command) (*bundle.SigningKey, error) {
	if k.path == "" {
		if k.stdin {
			return nil, Usagef(cmd.UseLine(), "Name the key with --"+k.Name+" FILE.", fmt.Errorf("--%s-password-stdin without --%s", k.Name, k.Name))
		}
		return nil, nil
	}
	pemBytes, err := os.ReadFile(k.path)
	if err != nil {
		return nil, Usagef(cmd.UseLine(), "", fmt.Errorf("--%s: %w", k.Name, err))
	}
	var password string
	switch {
	case k.stdin:
		line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("--%s-password-stdin: read standard input: %w", k.Name, err)
		}
		password = strings.TrimRight(line, "\r\n")
	case os.Getenv(EnvKeyPassword) != "":
		password = os.Getenv(EnvKeyPassword)
	default:
		password = os.Getenv("COSIGN_PASSWORD")
	}
	key, err := bundle.LoadSigningKey(pemBytes, []byte(password))
	if err != nil {
		return nil, &Error{Err: fmt.Errorf("--%s %s: %w", k.Name, k.path, err), Code: ExitPermanent,
			Recommendation: fmt.Sprintf("Give the key's password on standard input with --%s-password-stdin, or in $%s.", k.Name, EnvKeyPassword)}
	}
	return key, nil
}

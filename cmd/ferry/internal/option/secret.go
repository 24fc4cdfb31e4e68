package option

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"
)

// SecretAnnotation is the flag annotation of a secret's command-line flag. Its values are the safe
// forms of the secret: the standard-input flag and the environment variable. The CLI tests check
// that every secret flag has both.
const SecretAnnotation = "ferry/secret"

// Secret is one secret input, a password or a token, and the three ways to give it: standard input
// (--NAME-stdin), an environment variable, or the command line (--NAME). The command line is
// discouraged: other users of the machine see it in ps, and it stays in the shell history.
type Secret struct {
	Name  string // the flag, e.g. "token"; the standard-input flag is Name+"-stdin"
	Short string // one-letter form of the flag, or ""
	Env   string // the environment variable
	What  string // what the secret is, e.g. "registry password or token"
	Label string // the prompt of Prompt, e.g. "Password"

	value string
	stdin bool
}

func (s *Secret) stdinFlag() string { return s.Name + "-stdin" }

// ApplyFlags registers --NAME and --NAME-stdin.
func (s *Secret) ApplyFlags(fs *pflag.FlagSet) {
	fs.StringVarP(&s.value, s.Name, s.Short, "", fmt.Sprintf("%s (discouraged: visible in ps and shell history; use --%s or $%s)", s.What, s.stdinFlag(), s.Env))
	fs.BoolVar(&s.stdin, s.stdinFlag(), false, fmt.Sprintf("read the %s from the first line of standard input", s.What))
	_ = fs.SetAnnotation(s.Name, SecretAnnotation, []string{s.stdinFlag(), s.Env})
}

// Value returns the secret from --NAME-stdin, --NAME or the environment variable, in that order, or
// "" when none gives one. The command-line form warns on stderr.
func (s *Secret) Value(cmd *cobra.Command) (string, error) {
	switch {
	case s.stdin && s.value != "":
		return "", Usagef(cmd.UseLine(), fmt.Sprintf("Give the %s once, with --%s or $%s.", s.What, s.stdinFlag(), s.Env),
			fmt.Errorf("--%s and --%s are mutually exclusive", s.Name, s.stdinFlag()))
	case s.stdin:
		line, err := interruptible(cmd.Context(), func() (string, error) {
			line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
			if err != nil && !errors.Is(err, io.EOF) {
				return "", err
			}
			return strings.TrimRight(line, "\r\n"), nil
		})
		if err != nil {
			return "", fmt.Errorf("--%s: read standard input: %w", s.stdinFlag(), err)
		}
		if line == "" {
			return "", Usagef(cmd.UseLine(), fmt.Sprintf("Write the %s to ferry's standard input, e.g. printenv VAR | %s … --%s.", s.What, cmd.CommandPath(), s.stdinFlag()),
				fmt.Errorf("--%s: standard input is empty", s.stdinFlag()))
		}
		return line, nil
	case s.value != "":
		fmt.Fprintf(cmd.ErrOrStderr(), "Warning: --%s on the command line is visible to other users in ps and stays in the shell history; use --%s or $%s.\n",
			s.Name, s.stdinFlag(), s.Env)
		return s.value, nil
	}
	return os.Getenv(s.Env), nil
}

// Prompt asks for the secret on the terminal without echoing it. Without a terminal on standard
// input it is a usage error naming --NAME-stdin and the environment variable.
func (s *Secret) Prompt(cmd *cobra.Command) (string, error) {
	f, ok := cmd.InOrStdin().(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", Usagef(cmd.UseLine(), fmt.Sprintf("Pass it on standard input with --%s, or set %s.", s.stdinFlag(), s.Env),
			fmt.Errorf("no %s given, and standard input is not a terminal to ask for it", s.What))
	}
	fd := int(f.Fd())
	state, err := term.GetState(fd)
	if err != nil {
		return "", fmt.Errorf("read the %s from the terminal: %w", s.What, err)
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "%s: ", s.Label)
	secret, err := interruptible(cmd.Context(), func() (string, error) {
		b, err := term.ReadPassword(fd)
		return string(b), err
	})
	if cmd.Context().Err() != nil {
		// ReadPassword still waits for a line with echo off; give the terminal its echo back.
		_ = term.Restore(fd, state)
	}
	fmt.Fprintln(cmd.ErrOrStderr()) // the Enter the terminal did not echo
	if err != nil {
		return "", fmt.Errorf("read the %s from the terminal: %w", s.What, err)
	}
	if secret == "" {
		return "", Usagef(cmd.UseLine(), "", fmt.Errorf("the %s is empty", s.What))
	}
	return secret, nil
}

// interruptible runs read, which may block on standard input, and returns early with the cause
// when ctx is cancelled (Ctrl-C), so a read never holds up ferry's exit.
func interruptible(ctx context.Context, read func() (string, error)) (string, error) {
	type result struct {
		s   string
		err error
	}
	done := make(chan result, 1)
	go func() {
		s, err := read()
		done <- result{s, err}
	}()
	select {
	case r := <-done:
		return r.s, r.err
	case <-ctx.Done():
		return "", context.Cause(ctx)
	}
}

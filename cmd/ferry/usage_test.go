package main

import (
	"strings"
	"testing"
)

// TestCLIUsageErrors: every command-line mistake exits 2 with the error, the usage and what to do on
// stderr, and nothing on stdout; cobra alone prints the help and exits 0 for an unknown subcommand
// of a group (`ferry bundle puhs`), and exits 1 for the others.
func TestCLIUsageErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args   []string
		stderr []string
	}{
		{[]string{"bundle", "puhs"}, []string{`unknown command "puhs" for "ferry bundle"`, "Did you mean ferry bundle pull or ferry bundle push?"}},
		{[]string{"puhs"}, []string{`unknown command "puhs" for "ferry"`, "Run 'ferry --help'"}},
		{[]string{"app", "snyc", "shop"}, []string{`unknown command "snyc" for "ferry app"`, "ferry app sync"}},
		{[]string{"window", "chekc"}, []string{`unknown command "chekc" for "ferry window"`}},
		{[]string{"bundle", "push", "--bogus"}, []string{"unknown flag: --bogus", "Usage: ferry bundle push DIR REF"}},
		{[]string{"version", "--bogus"}, []string{"unknown flag: --bogus"}},
		{[]string{"bundle", "inspect", "--format"}, []string{"flag needs an argument: --format"}},
		{[]string{"app", "sync", "shop", "--timeout", "soon"}, []string{`invalid argument "soon" for "--timeout"`}},
		{[]string{"app", "sync", "shop", "--window-policy", "later"}, []string{`invalid --window-policy "later"`, "--window-policy fail|wait|override"}},
		{[]string{"app", "sync", "shop", "--window-policy", "override"}, []string{"--override-reason is required with --window-policy override"}},
		{[]string{"app", "sync", "shop", "--health-timeout", "-1s"}, []string{"--health-timeout -1s is not positive", "Usage: --health-timeout DURATION"}},
		{[]string{"app", "wait", "shop", "--timeout", "-5m"}, []string{"--timeout -5m0s is not positive", "e.g. 90s or 5m"}},
		{[]string{"app", "wait", "shop", "--stuck-after", "0s"}, []string{"--stuck-after 0s is not positive"}},
		{[]string{"app", "wait", "shop", "--revision", "abc"}, []string{`--revision "abc" is not a sha256 digest`, "Usage: --revision sha256:DIGEST"}},
		{[]string{"bundle", "pull", "127.0.0.1:1/shop/bundle:1", "-o", "out", "--only", "manifest"}, []string{"--only manifest: not a layer role", "did you mean --only manifests?"}},
		{[]string{"bundle", "push", "release/ferry.yaml", "127.0.0.1:1/shop/bundle:1"}, []string{"names the ferry.yaml file, not its directory", "ferry bundle push release 127.0.0.1:1/shop/bundle:1"}},
		{[]string{"bundle", "push", "127.0.0.1:1/shop/bundle:1", "../../examples/release"}, []string{"the first argument is the release directory, the second the reference: ferry bundle push ../../examples/release 127.0.0.1:1/shop/bundle:1"}},
		{[]string{"bundle", "inspect"}, []string{"accepts 1 arg(s), received 0", "Usage: ferry bundle inspect REF", "Run 'ferry bundle inspect --help'"}},
		{[]string{"bundle", "push", "dir"}, []string{"accepts 2 arg(s), received 1"}},
		{[]string{"app", "sync"}, []string{"accepts 1 arg(s), received 0", "Usage: ferry app sync NAME"}},
		{[]string{"app", "status", "a", "b"}, []string{"accepts 1 arg(s), received 2"}},
		{[]string{"app", "terminate"}, []string{"accepts 1 arg(s), received 0"}},
		{[]string{"window", "check", "extra", "--environment", "e"}, []string{`unknown command "extra" for "ferry window check"`}},
		{[]string{"version", "extra"}, []string{`unknown command "extra" for "ferry version"`}},
		{[]string{"logout"}, []string{"accepts 1 arg(s), received 0"}},
		{[]string{"bundle", "pull", "oci-layout:/nonexistent:1"}, []string{`required flag(s) "output" not set`, "Usage: ferry bundle pull REF -o DIR"}},
		{[]string{"login", "registry.example.com"}, []string{"--username is required"}},
		{[]string{"window", "check"}, []string{"--environment is required"}},
	}
	for _, tt := range tests {
		r := ferry(t, nil, "", tt.args...)
		ok := r.code == 2 && r.stdout == "" && strings.HasPrefix(r.stderr, "Error: ")
		for _, want := range tt.stderr {
			ok = ok && strings.Contains(r.stderr, want)
		}
		if !ok {
			t.Errorf("ferry %s = exit %d, stdout %q, stderr %q; want exit 2, no stdout, stderr with %q", strings.Join(tt.args, " "), r.code, r.stdout, r.stderr, tt.stderr)
		}
	}
	// Help asked for, or a command group alone, is not a mistake.
	for _, args := range [][]string{{"--help"}, {}, {"bundle"}, {"bundle", "--help"}, {"help", "app"}, {"app", "sync", "--help"}, {"--version"}} {
		if r := ferry(t, nil, "", args...); r.code != 0 || !strings.Contains(r.stdout, "ferry") || r.stderr != "" {
			t.Errorf("ferry %s = exit %d, stdout %q, stderr %q; want exit 0 and the help or version on stdout", strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
	}
}

package main

import (
	"strings"
	"testing"
)

// TestCLIUsageErrors: every command-line mistake exits 2 with the error, the usage and what to do on
// stderr, and nothing on stdout, before any request (the addresses here have nothing listening).
// Cobra alone would print the help and exit 0 for an unknown subcommand of a group (`ferry bundle
// puhs`), and exit 1 for the other mistakes.
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
		{[]string{"window", "chek"}, []string{`unknown command "chek" for "ferry window"`, "Did you mean ferry window check?"}},
		{[]string{"app", "stauts"}, []string{`unknown command "stauts" for "ferry app"`, "Did you mean ferry app status?"}},
		{[]string{"bundle", "push", "--bogus"}, []string{"unknown flag: --bogus", "Usage: ferry bundle push DIR REF"}},
		{[]string{"version", "--bogus"}, []string{"unknown flag: --bogus"}},
		{[]string{"bundle", "inspect", "--format"}, []string{"flag needs an argument: --format"}},
		{[]string{"app", "sync", "shop", "--timeout", "soon"}, []string{`--timeout soon: not a duration; write a number with a unit, e.g. 90s, 5m or 1h30m`}},
		{[]string{"app", "sync", "shop", "--timeout", "5"}, []string{"--timeout 5: missing unit; use a unit, e.g. 5s or 5m", "Usage: ferry app sync NAME"}},
		{[]string{"bundle", "inspect", "127.0.0.1:1/shop/b:1", "--request-timeout", "30"}, []string{"--request-timeout 30: missing unit; use a unit, e.g. 30s or 30m"}},
		{[]string{"bundle", "pull", "127.0.0.1:1/shop/b:1", "-o", "out", "--max-file-size", "10x"}, []string{"--max-file-size 10x: not a size; write bytes or a number with a unit, e.g. 512KiB or 1MB", "Usage: ferry bundle pull REF -o DIR"}},
		{[]string{"bundle", "pull", "127.0.0.1:1/shop/b:1", "-o", "out", "--max-total-size", "1.5PB"}, []string{"--max-total-size 1.5PB: not a size", "KiB, MiB, GiB, TiB"}},
		{[]string{"bundle", "pull", "127.0.0.1:1/shop/b:1", "-o", "out", "--max-total-size", "0"}, []string{"--max-total-size 0: must be positive"}},
		{[]string{"bundle", "pull", "127.0.0.1:1/shop/b:1", "-o", "out", "--max-file-size", "-5MB"}, []string{"--max-file-size -5MB: must be positive"}},
		{[]string{"bundle", "pull", "127.0.0.1:1/shop/b:1", "-o", "out", "--max-entries", "5x"}, []string{"--max-entries 5x: not a whole number"}},
		{[]string{"bundle", "pull", "127.0.0.1:1/shop/b:1", "-o", "out", "--max-entries", "-5"}, []string{"--max-entries -5: must be positive", "Usage: ferry bundle pull REF -o DIR --max-entries N"}},
		{[]string{"bundle", "inspect", "127.0.0.1:1/shop/b:1", "--retries", "-1"}, []string{"--retries -1 is less than 1", "Use 1 for a single attempt"}},
		{[]string{"bundle", "inspect", "127.0.0.1:1/shop/b:1", "--idle-timeout", "-1s"}, []string{"--idle-timeout -1s is not positive"}},
		{[]string{"app", "status", "shop", "--retries", "-1"}, []string{"--retries -1 is less than 1"}},
		{[]string{"bundle", "pull", "127.0.0.1:1/Shop/B:1", "-o", "out"}, []string{`"127.0.0.1:1/Shop/B:1": invalid reference: invalid repository "Shop/B"; repository names are lowercase: 127.0.0.1:1/shop/b:1`}},
		{[]string{"bundle", "inspect", "127.0.0.1:5000"}, []string{"127.0.0.1:5000 is a registry host without a repository; write 127.0.0.1:5000/REPO:TAG"}},
		{[]string{"bundle", "inspect", "registry.example.com"}, []string{"registry.example.com is a registry host without a repository"}},
		{[]string{"bundle", "inspect", "https://127.0.0.1:1/shop/b"}, []string{`"https://127.0.0.1:1/shop/b": invalid reference: a reference has no https:// scheme: write it as 127.0.0.1:1/shop/b`}},
		{[]string{"help", "puhs"}, []string{`unknown help topic "puhs"`, "Did you mean ferry help bundle pull or ferry help bundle push?"}},
		{[]string{"help", "bundle", "inpsect"}, []string{`unknown help topic "bundle inpsect"`, "Did you mean ferry help bundle inspect?"}},
		{[]string{"app", "sync", "shop", "--window-policy", "later"}, []string{`invalid --window-policy "later"`, "--window-policy fail|wait|override"}},
		{[]string{"app", "sync", "shop", "--window-policy", "override"}, []string{"--override-reason is required with --window-policy override"}},
		{[]string{"app", "sync", "shop", "--health-timeout", "-1s"}, []string{"--health-timeout -1s is not positive", "Usage: --health-timeout DURATION"}},
		{[]string{"app", "wait", "shop", "--timeout", "-5m"}, []string{"--timeout -5m0s is not positive", "e.g. 90s or 5m"}},
		{[]string{"app", "wait", "shop", "--stuck-after", "0s"}, []string{"--stuck-after 0s is not positive"}},
		{[]string{"app", "wait", "shop", "--revision", "abc"}, []string{`--revision "abc" is not a sha256 digest`, "Usage: --revision sha256:DIGEST"}},
		{[]string{"bundle", "pull", "127.0.0.1:1/shop/bundle:1", "-o", "out", "--only", "manifest"}, []string{"--only manifest: not a layer role", "Did you mean --only manifests?"}},
		{[]string{"bundle", "push", "release/ferry.yaml", "127.0.0.1:1/shop/bundle:1"}, []string{"names the ferry.yaml file, not its directory", "ferry bundle push release 127.0.0.1:1/shop/bundle:1"}},
		{[]string{"bundle", "push", "127.0.0.1:1/shop/bundle:1", "../../examples/release"}, []string{"The first argument is the release directory, the second the reference: ferry bundle push ../../examples/release 127.0.0.1:1/shop/bundle:1"}},
		{[]string{"fleet", "rollout", "127.0.0.1:1/shop/b:1", "-l", "ring=early", "--target-timeout", "0s"}, []string{"--target-timeout 0s is not a positive duration", "Usage: --target-timeout DURATION"}},
		{[]string{"fleet", "rollout", "127.0.0.1:1/shop/b:1", "-l", "ring=early", "--max-concurrency", "0"}, []string{"--max-concurrency 0 is less than 1"}},
		{[]string{"fleet", "rollout", "127.0.0.1:1/shop/b:1", "-l", "ring=early", "--deadline", "tomorrow"}, []string{"--deadline"}},
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
	// Said once, and never with the repository mangled.
	for _, args := range [][]string{{"bundle", "pull", "127.0.0.1:1/Shop/B:1", "-o", "out"}, {"bundle", "inspect", "https://127.0.0.1:1/shop/b"}} {
		if r := ferry(t, nil, "", args...); strings.Count(r.stderr, "invalid reference") != 1 || strings.Contains(r.stderr, `"/127.0.0.1`) {
			t.Errorf("ferry %s: stderr %q, want invalid reference said once and no mangled repository", strings.Join(args, " "), r.stderr)
		}
	}
	// Help asked for, or a command group alone, is not a mistake.
	for _, args := range [][]string{{"--help"}, {}, {"bundle"}, {"bundle", "--help"}, {"help"}, {"help", "app"}, {"help", "bundle", "push"}, {"app", "sync", "--help"}, {"--version"}} {
		if r := ferry(t, nil, "", args...); r.code != 0 || !strings.Contains(r.stdout, "ferry") || r.stderr != "" {
			t.Errorf("ferry %s = exit %d, stdout %q, stderr %q; want exit 0 and the help or version on stdout", strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
	}
	// Sizes show in units.
	if r := ferry(t, nil, "", "bundle", "pull", "--help"); !strings.Contains(r.stdout, "--max-file-size size") || !strings.Contains(r.stdout, "default 64MiB for manifests") {
		t.Errorf("ferry bundle pull --help = %q, want the size flags with defaults in units", r.stdout)
	}
}

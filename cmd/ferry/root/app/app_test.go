package app

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ferry-dev/terraform-provider-ferry/cmd/ferry/internal/option"
	"github.com/ferry-dev/terraform-provider-ferry/internal/argocd"
)

// subcommand returns `ferry app NAME`.
func subcommand(t *testing.T, name string) *cobra.Command {
	t.Helper()
	for _, c := range New().Commands() {
		if c.Name() == name {
			return c
		}
	}
	t.Fatalf("no command ferry app %s", name)
	return nil
}

// TestFlagDefaults: the engine flags of `ferry app sync` and `ferry app wait` default to the
// engine's defaults (argocd.DefaultSyncOptions), and an unset flag gives the engine exactly those.
func TestFlagDefaults(t *testing.T) {
	durations := []struct {
		flag string
		want time.Duration
	}{
		{"timeout", argocd.DefaultTimeout},
		{"health-timeout", argocd.DefaultHealthTimeout},
		{"stuck-after", argocd.DefaultStuckAfter},
	}
	for _, cmd := range []string{"sync", "wait"} {
		fs := subcommand(t, cmd).Flags()
		if err := fs.Parse(nil); err != nil {
			t.Fatal(err)
		}
		for _, tt := range durations {
			if got, err := fs.GetDuration(tt.flag); err != nil || got != tt.want {
				t.Errorf("ferry app %s --%s default = %v (%v), want %v", cmd, tt.flag, got, err, tt.want)
			}
			if got, want := fs.Lookup(tt.flag).DefValue, argocd.ShortDuration(tt.want); got != want {
				t.Errorf("ferry app %s --%s help default = %q, want %q", cmd, tt.flag, got, want)
			}
		}
	}
	fs := subcommand(t, "sync").Flags()
	if got, want := fs.Lookup("window-policy").DefValue, string(argocd.DefaultWindowPolicy); got != want {
		t.Errorf("ferry app sync --window-policy default = %q, want %q", got, want)
	}
	// Unset flags give the engine its defaults.
	var f engineFlags
	f.apply(pflag.NewFlagSet("x", pflag.ContinueOnError))
	o := f.options(nil)
	if o.Timeout != argocd.DefaultSyncOptions.Timeout || o.HealthTimeout != argocd.DefaultSyncOptions.HealthTimeout || o.StuckAfter != argocd.DefaultSyncOptions.StuckAfter {
		t.Errorf("engineFlags.options() = %+v, want the timeouts of argocd.DefaultSyncOptions", o)
	}
}

// TestDocFlagTable: docs/cli.md's table of sync and wait options lists every option of the two
// commands (the cluster and format flags are described above it), each with the commands that
// take it and the default the command really has.
func TestDocFlagTable(t *testing.T) {
	doc, err := os.ReadFile("../../../../docs/cli.md")
	if err != nil {
		t.Fatal(err)
	}
	common := pflag.NewFlagSet("common", pflag.ContinueOnError)
	new(option.Kube).ApplyFlags(common)
	new(option.Format).ApplyFlags(common)
	_, section, _ := strings.Cut(string(doc), "\n## Sync and wait options\n")
	section, _, _ = strings.Cut(section, "\n## ")
	row := regexp.MustCompile("(?m)^\\| `--([a-z-]+)` \\| ([a-z, ]+) \\| *([^|]*?) *\\|")
	documented := map[string][]string{} // command → flags
	for _, m := range row.FindAllStringSubmatch(section, -1) {
		name, def := m[1], strings.TrimSpace(m[3])
		for _, cmd := range strings.Split(m[2], ", ") {
			if cmd != "sync" && cmd != "wait" {
				t.Errorf("docs/cli.md: --%s listed for %q, want sync or wait", name, cmd)
				continue
			}
			documented[cmd] = append(documented[cmd], name)
			fl := subcommand(t, cmd).Flags().Lookup(name)
			if fl == nil {
				t.Errorf("docs/cli.md lists --%s for ferry app %s, which has no such flag", name, cmd)
				continue
			}
			if want := fl.DefValue; def != want {
				t.Errorf("docs/cli.md: ferry app %s --%s default %q, want %q (the flag's)", cmd, name, def, want)
			}
		}
	}
	for _, cmd := range []string{"sync", "wait"} {
		subcommand(t, cmd).Flags().VisitAll(func(fl *pflag.Flag) {
			if fl.Name == "help" || common.Lookup(fl.Name) != nil {
				return
			}
			if !slices.Contains(documented[cmd], fl.Name) {
				t.Errorf("docs/cli.md: the table of sync and wait options does not list --%s of ferry app %s", fl.Name, cmd)
			}
		})
	}
}

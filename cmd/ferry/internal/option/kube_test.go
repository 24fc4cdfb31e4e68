package option

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestKubeTokenFrom checks that the CLI names the flag or variable its token came from.
func TestKubeTokenFrom(t *testing.T) {
	tests := []struct {
		args  []string
		env   string
		stdin string
		want  string
	}{
		{args: []string{"--token", "t"}, want: "--token"},
		{args: []string{"--token-stdin"}, stdin: "t\n", want: "--token-stdin"},
		{env: "t", want: "$KUBE_TOKEN"},
		{want: ""},
	}
	for _, tt := range tests {
		t.Setenv("KUBE_TOKEN", tt.env)
		var k Kube
		cmd := &cobra.Command{Use: "x", RunE: func(cmd *cobra.Command, _ []string) error { return k.Parse(cmd) }}
		k.ApplyFlags(cmd.Flags())
		cmd.SetArgs(tt.args)
		cmd.SetIn(strings.NewReader(tt.stdin))
		if err := cmd.Execute(); err != nil {
			t.Fatal(err)
		}
		if got := k.tokenFrom(); got != tt.want {
			t.Errorf("tokenFrom() with %v, KUBE_TOKEN=%q = %q, want %q", tt.args, tt.env, got, tt.want)
		}
	}
}

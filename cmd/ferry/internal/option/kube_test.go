package option

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
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

// TestKubeNames: kube's errors name the flag a setting came from, or the variable when the flag
// is unset, and the bounds are validated before any request.
func TestKubeNames(t *testing.T) {
	t.Setenv("KUBE_CONFIG_PATH", "")
	t.Setenv("KUBE_HOST", "")
	var k Kube
	k.ApplyFlags(pflag.NewFlagSet("x", pflag.ContinueOnError))
	k.Kubeconfig = "/nonexistent"
	if _, err := k.Client(); err == nil || !strings.HasPrefix(err.Error(), `--kubeconfig: invalid Kubernetes settings: kubeconfig "/nonexistent" cannot be read`) {
		t.Errorf("Client() with --kubeconfig /nonexistent = %v, want it to name --kubeconfig", err)
	}
	k.Kubeconfig = ""
	t.Setenv("KUBE_CONFIG_PATH", "/nonexistent")
	if _, err := k.Client(); err == nil || !strings.HasPrefix(err.Error(), "$KUBE_CONFIG_PATH: invalid Kubernetes settings") {
		t.Errorf("Client() with KUBE_CONFIG_PATH=/nonexistent = %v, want it to name $KUBE_CONFIG_PATH", err)
	}
	t.Setenv("KUBE_CONFIG_PATH", "")
	t.Setenv("KUBE_HOST", "10.0.0.1:6443")
	if _, err := k.Client(); err == nil || !strings.HasPrefix(err.Error(), `$KUBE_HOST: invalid Kubernetes settings: "10.0.0.1:6443" must start with https://`) {
		t.Errorf("Client() with KUBE_HOST=10.0.0.1:6443 = %v, want it to name $KUBE_HOST", err)
	}

	for _, args := range [][]string{{"--request-timeout", "0s"}, {"--retries", "0"}} {
		var k Kube
		cmd := &cobra.Command{Use: "x", RunE: func(cmd *cobra.Command, _ []string) error { return k.Parse(cmd) }, SilenceErrors: true, SilenceUsage: true}
		k.ApplyFlags(cmd.Flags())
		cmd.SetArgs(args)
		err := cmd.Execute()
		if ExitCode(err) != ExitUsage || !strings.HasPrefix(err.Error(), args[0]+" ") {
			t.Errorf("Parse(%v) = %v (exit %d), want a usage error naming %s", args, err, ExitCode(err), args[0])
		}
	}
}

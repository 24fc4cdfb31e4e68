package root

import (
	"bytes"
	"encoding/json"
	"runtime"
	"testing"
)

func TestVersionCommand(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"version"}, "1.2.3\n"},
		{[]string{"--version"}, "ferry version 1.2.3\n"},
		{[]string{"version", "--format", "go-template={{.version}} {{.platform}}"}, "1.2.3 " + runtime.GOOS + "/" + runtime.GOARCH + "\n"},
	} {
		cmd := New("1.2.3")
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetArgs(tt.args)
		if err := cmd.Execute(); err != nil || out.String() != tt.want {
			t.Errorf("ferry %v = %q, %v; want %q", tt.args, out.String(), err, tt.want)
		}
	}

	cmd := New("1.2.3")
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"version", "--format", "json"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	var v map[string]string
	if err := json.Unmarshal(out.Bytes(), &v); err != nil {
		t.Fatalf("ferry version --format json: %v\n%s", err, out.String())
	}
	if v["version"] != "1.2.3" || v["goVersion"] != runtime.Version() || v["platform"] != runtime.GOOS+"/"+runtime.GOARCH {
		t.Errorf("ferry version --format json = %v", v)
	}
}

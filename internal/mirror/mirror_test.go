package mirror

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestWrite: one containerd hosts.toml (a port written host_port_) and one CRI-O drop-in per
// original host, each pointing at the relocated prefix; a host that would escape DIR is refused.
// containerd's own loader reads the hosts.toml in internal/mirror/containerdtest.
func TestWrite(t *testing.T) {
	dir := t.TempDir()
	r := Relocation{Registry: "registry.acme.internal", Repository: "shop/bundle", Hosts: []string{"ghcr.io", "10.0.0.5:5000", "ghcr.io"}}
	files, err := r.Write(dir)
	want := []string{
		"containerd/certs.d/10.0.0.5_5000_/hosts.toml", "crio/registries.conf.d/50-ferry-mirror-10.0.0.5-5000.conf",
		"containerd/certs.d/ghcr.io/hosts.toml", "crio/registries.conf.d/50-ferry-mirror-ghcr.io.conf",
	}
	if err != nil || !slices.Equal(files, want) {
		t.Fatalf("Write = %v, %v; want %v", files, err, want)
	}
	hosts, _ := os.ReadFile(filepath.Join(dir, want[0]))
	crio, _ := os.ReadFile(filepath.Join(dir, want[1]))
	for _, c := range []struct{ file, want string }{
		{string(hosts), `server = "https://10.0.0.5:5000"`},
		{string(hosts), `[host."https://registry.acme.internal/v2/shop/bundle/images/10.0.0.5-5000"]`},
		{string(hosts), "override_path = true"},
		{string(crio), `prefix = "10.0.0.5:5000"`},
		{string(crio), `location = "registry.acme.internal/shop/bundle/images/10.0.0.5-5000"`},
		{string(crio), `pull-from-mirror = "digest-only"`},
	} {
		if !strings.Contains(c.file, c.want) {
			t.Errorf("missing %s in:\n%s", c.want, c.file)
		}
	}
	for _, bad := range []string{"..", "a/b", ""} {
		if _, err := (Relocation{Registry: "r", Repository: "x", Hosts: []string{bad}}).Write(t.TempDir()); err == nil {
			t.Errorf("Write(host %q) accepted", bad)
		}
	}
}

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-dev/terraform-provider-ferry/bundle"
	"github.com/ferry-dev/terraform-provider-ferry/internal/testenv"
)

// TestCLICopy: `ferry bundle copy` relocates a bundle and its image between two registries and
// through an archive, writes the mirror configuration, survives a kill midway and a full disk under
// the archive, prints JSON for CI, and names the mistake in its arguments.
func TestCLICopy(t *testing.T) {
	src := testenv.StartRegistry(t, testenv.RegistryOptions{})
	dst := testenv.StartRegistry(t, testenv.RegistryOptions{})
	src.PushImage(t, "shop/api", "1.4.0", "api")
	env := []string{"DOCKER_CONFIG=" + t.TempDir(), "SOURCE_DATE_EPOCH=1764115200"}
	release := writeRelease(t, map[string]string{
		"ferry.yaml": "apiVersion: ferry.dev/v1\nkind: Bundle\nname: shop\nversion: 1.4.0\nimages:\n  api: " + src.Addr + "/shop/api:1.4.0\nmanifests: m\n",
		"m/cm.yaml":  "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  value: x\n",
	})
	r := ferry(t, env, "", "bundle", "push", release, src.Addr+"/shop/bundle:1.4.0", "--plain-http", "--format", "json")
	var pushed struct{ Digest string }
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &pushed) != nil {
		t.Fatalf("push: exit %d %s %s", r.code, r.stdout, r.stderr)
	}

	mirrorDir := t.TempDir()
	r = ferry(t, env, "", "bundle", "copy", src.Addr+"/shop/bundle:1.4.0", dst.Addr+"/acme/bundle", "--plain-http", "--mirror-config", mirrorDir, "--format", "json")
	var res bundle.CopyResult
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &res) != nil || res.Digest != pushed.Digest || len(res.Images) != 1 ||
		res.Images[0].To != dst.Addr+"/"+bundle.RelocatedImagePath("acme/bundle", src.Addr+"/shop/api")+"@"+res.Images[0].From[strings.Index(res.Images[0].From, "@")+1:] {
		t.Fatalf("copy: exit %d %s %s", r.code, r.stdout, r.stderr)
	}
	host, _, _ := strings.Cut(src.Addr, "/")
	hostsTOML, err := os.ReadFile(filepath.Join(mirrorDir, "containerd", "certs.d", strings.Replace(host, ":", "_", 1)+"_", "hosts.toml"))
	if err != nil || !strings.Contains(string(hostsTOML), `[host."http://`+dst.Addr+"/v2/"+bundle.RelocatedPrefix("acme/bundle", host)+`"]`) || len(res.MirrorConfig) != 2 {
		t.Errorf("--mirror-config wrote %v; hosts.toml %v:\n%s", res.MirrorConfig, err, hostsTOML)
	}
	r = ferry(t, env, "", "bundle", "inspect", dst.Addr+"/acme/bundle:1.4.0", "--plain-http")
	if r.code != 0 || !strings.Contains(r.stdout, "  relocation ") {
		t.Errorf("inspect of the copy lists no relocation record: exit %d\n%s", r.code, r.stdout)
	}

	archive := filepath.Join(t.TempDir(), "shop.tar")
	if r = ferry(t, env, "", "bundle", "copy", src.Addr+"/shop/bundle:1.4.0", "--to-archive", archive, "--plain-http"); r.code != 0 || !strings.Contains(r.stdout, "(in the archive)") {
		t.Fatalf("copy --to-archive: exit %d %s %s", r.code, r.stdout, r.stderr)
	}
	r = ferry(t, env, "", "bundle", "copy", "--from-archive", archive, dst.Addr+"/airgap/bundle", "--plain-http", "--format", "go-template={{.digest}} {{.tags}}")
	if r.code != 0 || r.stdout != pushed.Digest+" [1.4.0]\n" {
		t.Errorf("copy --from-archive: exit %d %q %s", r.code, r.stdout, r.stderr)
	}

	// A full disk while the archive is written, simulated with a file size limit (writes fail the
	// same way, with EFBIG instead of ENOSPC): a clear error, no archive and no temporary file
	// left; the same command without the limit finishes from the staged layout.
	full := filepath.Join(t.TempDir(), "full.tar")
	fi, err := os.Stat(archive)
	if err != nil {
		t.Fatal(err)
	}
	limited := exec.Command("bash", "-c", fmt.Sprintf("trap '' XFSZ; ulimit -f %d; exec %q bundle copy %s --to-archive %s --plain-http",
		fi.Size()/1024/2, ferryBin, src.Addr+"/shop/bundle:1.4.0", full))
	limited.Env = append(os.Environ(), env...)
	out, err := limited.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "write archive "+full) || !strings.Contains(string(out), "file too large") {
		t.Errorf("copy --to-archive onto a full disk: %v\n%s", err, out)
	}
	for _, left := range []string{full, full + ".tmp"} {
		if _, err := os.Stat(left); !os.IsNotExist(err) {
			t.Errorf("a failed archive left %s", left)
		}
	}
	if r = ferry(t, env, "", "bundle", "copy", src.Addr+"/shop/bundle:1.4.0", "--to-archive", full, "--plain-http"); r.code != 0 {
		t.Errorf("copy --to-archive again: exit %d %s", r.code, r.stderr)
	}
	if _, err := os.Stat(full + ".partial"); !os.IsNotExist(err) {
		t.Errorf("the staged layout is left after the archive was written")
	}

	// Killed midway (SIGKILL while the destination holds a request, half-way through the copy's
	// requests): no tag at the destination; the same copy run again finishes, sending only the rest.
	count := testenv.StartFaultProxy(t, dst.RawAddr, 0, 0)
	if r = ferry(t, env, "", "bundle", "copy", src.Addr+"/shop/bundle:1.4.0", count.Addr+"/count/bundle", "--plain-http", "--concurrency", "1"); r.code != 0 {
		t.Fatalf("copy through the counting proxy: exit %d %s", r.code, r.stderr)
	}
	hang := testenv.StartFaultProxy(t, dst.RawAddr, count.Requests()/2, testenv.FaultTimeout)
	killed := exec.Command(ferryBin, "bundle", "copy", src.Addr+"/shop/bundle:1.4.0", hang.Addr+"/killed/bundle", "--plain-http", "--concurrency", "1")
	killed.Env = append(os.Environ(), env...)
	if err := killed.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); hang.Requests() < count.Requests()/2 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	killed.Process.Kill()
	killed.Wait()
	if tags := dst.ListTags(t, "killed/bundle"); len(tags) != 0 {
		t.Errorf("a killed copy left tags %v", tags)
	}
	r = ferry(t, env, "", "bundle", "copy", src.Addr+"/shop/bundle:1.4.0", dst.Addr+"/killed/bundle", "--plain-http", "--format", "json")
	var rerun bundle.CopyResult
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &rerun) != nil || rerun.Skipped == 0 || rerun.Digest != pushed.Digest {
		t.Errorf("the copy run again after a kill: exit %d, %s %s; want it to finish, skipping what the killed one sent", r.code, r.stdout, r.stderr)
	}

	for _, args := range [][]string{
		{"bundle", "copy", src.Addr + "/shop/bundle:1.4.0"},
		{"bundle", "copy", src.Addr + "/shop/bundle:1.4.0", "--to-archive", archive, "--from-archive", archive},
		{"bundle", "copy", src.Addr + "/shop/bundle:1.4.0", dst.Addr + "/acme/bundle@" + pushed.Digest, "--plain-http"},
		{"bundle", "copy", src.Addr + "/shop/bundle:1.4.0", "--to-archive", archive + "2", "--mirror-config", mirrorDir},
		{"bundle", "copy", src.Addr + "/shop/bundle:1.4.0", dst.Addr + "/acme/bundle", "--platform", "linux"},
	} {
		if r = ferry(t, env, "", args...); r.code != 2 {
			t.Errorf("ferry %s: exit %d, want 2: %s", strings.Join(args, " "), r.code, r.stderr)
		}
	}
}

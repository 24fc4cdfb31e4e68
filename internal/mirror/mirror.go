// Package mirror writes the registry mirror configuration with which a cluster pulls the images of
// a relocated bundle from the customer's registry without rewriting a manifest: every image is
// pinned by digest, so the container runtime can fetch exactly the same content from another host.
//
// For each original registry host H of the bundle's images, relocated next to the bundle at
// REGISTRY/REPO (under REPO/images/<H with ':' written as '-'>/), it writes
//
//   - containerd: containerd/certs.d/H/hosts.toml (the layout of containerd's config_path, e.g.
//     /etc/containerd/certs.d; a port is written host_port_, as containerd looks for it), a host entry for the relocated prefix with override_path, so that
//     H/some/image@sha256:… is fetched from REGISTRY/v2/REPO/images/H/some/image;
//   - CRI-O (containers/image): crio/registries.conf.d/50-ferry-mirror-<name>.conf, a [[registry]]
//     for prefix H with a digest-only mirror at the relocated prefix.
package mirror

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/ferry-dev/terraform-provider-ferry/bundle"
)

// Relocation is where a bundle's images were copied.
type Relocation struct {
	// Registry is the destination registry host[:port]; Repository the bundle's repository path.
	Registry, Repository string
	// PlainHTTP: the destination speaks plain HTTP (lab registries).
	PlainHTTP bool
	// Hosts are the original registry hosts of the images.
	Hosts []string
}

// Prefix is the repository prefix, on the destination registry, of the images of host.
func (r Relocation) Prefix(host string) string { return bundle.RelocatedPrefix(r.Repository, host) }

// ContainerdHosts returns the hosts.toml for host.
func (r Relocation) ContainerdHosts(host string) string {
	scheme := "https"
	if r.PlainHTTP {
		scheme = "http"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by ferry bundle copy: images of %s relocated to %s/%s, pulled by digest.\n", host, r.Registry, r.Prefix(host))
	fmt.Fprintf(&b, "server = %s\n\n", strconv.Quote("https://"+host))
	fmt.Fprintf(&b, "[host.%s]\n", strconv.Quote(scheme+"://"+r.Registry+"/v2/"+r.Prefix(host)))
	b.WriteString("  capabilities = [\"pull\", \"resolve\"]\n")
	b.WriteString("  override_path = true\n")
	return b.String()
}

// CRIORegistries returns the registries.conf drop-in for host.
func (r Relocation) CRIORegistries(host string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by ferry bundle copy: images of %s relocated to %s/%s, pulled by digest.\n", host, r.Registry, r.Prefix(host))
	b.WriteString("[[registry]]\n")
	fmt.Fprintf(&b, "prefix = %s\nlocation = %s\n\n", strconv.Quote(host), strconv.Quote(host))
	b.WriteString("[[registry.mirror]]\n")
	fmt.Fprintf(&b, "location = %s\n", strconv.Quote(r.Registry+"/"+r.Prefix(host)))
	if r.PlainHTTP {
		b.WriteString("insecure = true\n")
	}
	b.WriteString("pull-from-mirror = \"digest-only\"\n")
	return b.String()
}

// Write writes the files for every host below dir and returns their paths, relative to dir.
// Existing files of the same names are replaced.
func (r Relocation) Write(dir string) ([]string, error) {
	var written []string
	hosts := slices.Compact(slices.Sorted(slices.Values(r.Hosts)))
	for _, host := range hosts {
		if host == "" || strings.ContainsAny(host, "/\\") || host == "." || host == ".." {
			return written, fmt.Errorf("mirror config: %q is not a registry host", host)
		}
		name := strings.ReplaceAll(host, ":", "-")
		for _, f := range []struct{ path, content string }{
			{filepath.Join("containerd", "certs.d", containerdHostDir(host), "hosts.toml"), r.ContainerdHosts(host)},
			{filepath.Join("crio", "registries.conf.d", "50-ferry-mirror-"+name+".conf"), r.CRIORegistries(host)},
		} {
			p := filepath.Join(dir, f.path)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return written, fmt.Errorf("mirror config: %w", err)
			}
			if err := os.WriteFile(p, []byte(f.content), 0o644); err != nil {
				return written, fmt.Errorf("mirror config: %w", err)
			}
			written = append(written, f.path)
		}
	}
	return written, nil
}

// containerdHostDir is the directory containerd reads a host's hosts.toml from: "host:port" is
// written "host_port_" (the only form containerd reads on every platform).
func containerdHostDir(host string) string {
	if i := strings.LastIndex(host, ":"); i > 0 {
		return host[:i] + "_" + host[i+1:] + "_"
	}
	return host
}

package option

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ferry-dev/terraform-provider-ferry/bundle"
)

// Remote is the registry-access flag group, like oras and docker: credentials come from
// ~/.docker/config.json and its credential helpers (see `ferry login`), and an authentication
// failure names the one used and what to do (bundle.CredentialError). --plain-http and --insecure
// apply to the command's own registry only (the registry of REF, or HOST for login); any other
// registry, such as an image registry of ferry.yaml, is named with --plain-http-registry or
// --insecure-registry.
type Remote struct {
	PlainHTTP bool
	Insecure  bool
	Registries
	RequestTimeout time.Duration
	IdleTimeout    time.Duration
	Retries        int
}

// ApplyFlags registers the flags.
func (r *Remote) ApplyFlags(fs *pflag.FlagSet) {
	fs.BoolVar(&r.PlainHTTP, "plain-http", false, "use plain HTTP instead of HTTPS for the command's registry (for image registries use --plain-http-registry)")
	fs.BoolVar(&r.Insecure, "insecure", false, "skip TLS certificate verification of the command's registry (for image registries use --insecure-registry)")
	r.Registries.ApplyFlags(fs)
	fs.DurationVar(&r.RequestTimeout, "request-timeout", 60*time.Second, "how long to wait for a registry to answer a request")
	fs.DurationVar(&r.IdleTimeout, "idle-timeout", 30*time.Second, "how long a manifest or blob transfer may go without a byte before the attempt fails")
	fs.IntVar(&r.Retries, "retries", 5, "attempts per request when a registry answers 5xx/429/408 or drops, stalls or times out the connection")
}

// Parse validates the flags.
func (r *Remote) Parse(*cobra.Command) error {
	if err := r.Registries.Parse(); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		d    time.Duration
	}{{"--request-timeout", r.RequestTimeout}, {"--idle-timeout", r.IdleTimeout}} {
		if f.d <= 0 {
			return Usagef(f.name+" DURATION", "use a positive duration, e.g. 30s", fmt.Errorf("%s %v is not positive", f.name, f.d))
		}
	}
	if r.Retries < 1 {
		return Usagef("--retries N", "use 1 for a single attempt", fmt.Errorf("--retries %d is less than 1", r.Retries))
	}
	return nil
}

// Client returns a bundle client for the flags. targets are the command's own registries (one, or
// a copy's two), which --plain-http and --insecure apply to; "" (an OCI layout) is none.
func (r *Remote) Client(targets ...string) (*bundle.Client, error) {
	plain, insecure := append([]string(nil), r.PlainHTTPRegistries...), append([]string(nil), r.InsecureRegistries...)
	for _, target := range targets {
		if target != "" && r.PlainHTTP {
			plain = append(plain, target)
		}
		if target != "" && r.Insecure {
			insecure = append(insecure, target)
		}
	}
	return bundle.NewClient(bundle.ClientOptions{
		PlainHTTPRegistries: plain,
		InsecureRegistries:  insecure,
		CAFile:              r.CAFile,
		RequestTimeout:      r.RequestTimeout,
		IdleTimeout:         r.IdleTimeout,
		MaxAttempts:         r.Retries,
	})
}

// Registries are the flags naming registries that need plain HTTP, no certificate check or extra
// certificate authorities: part of Remote, and alone in commands that reach registries only to
// verify a bundle's signature (`ferry app sync`).
type Registries struct {
	PlainHTTPRegistries []string
	InsecureRegistries  []string
	CAFile              string
}

// ApplyFlags registers the flags.
func (r *Registries) ApplyFlags(fs *pflag.FlagSet) {
	fs.StringArrayVar(&r.PlainHTTPRegistries, "plain-http-registry", nil, "use plain HTTP for registry `HOST` (host[:port]) too; repeatable")
	fs.StringArrayVar(&r.InsecureRegistries, "insecure-registry", nil, "skip TLS certificate verification of registry `HOST` (host[:port]) too; repeatable")
	fs.StringVar(&r.CAFile, "ca-file", "", "PEM file of extra certificate authorities to trust")
}

// Parse validates the flags.
func (r *Registries) Parse() error {
	for _, f := range []struct {
		name  string
		hosts []string
	}{{"--plain-http-registry", r.PlainHTTPRegistries}, {"--insecure-registry", r.InsecureRegistries}} {
		for _, h := range f.hosts {
			if err := bundle.ValidateRegistryHost(h); err != nil {
				return Usagef(f.name+" HOST", "name the registry as in image references, e.g. ghcr.io or 127.0.0.1:5000", fmt.Errorf("%s: %w", f.name, err))
			}
		}
	}
	return nil
}

// Client returns a bundle client for the flags, with the default timeouts and retries.
func (r *Registries) Client() (*bundle.Client, error) {
	return bundle.NewClient(bundle.ClientOptions{PlainHTTPRegistries: r.PlainHTTPRegistries, InsecureRegistries: r.InsecureRegistries, CAFile: r.CAFile})
}

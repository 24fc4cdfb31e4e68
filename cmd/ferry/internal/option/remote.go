package option

import (
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ferry-dev/terraform-provider-ferry/bundle"
)

// Remote is the registry-access flag group, like oras and docker: credentials come from
// ~/.docker/config.json and its credential helpers (see `ferry login`).
type Remote struct {
	PlainHTTP      bool
	Insecure       bool
	CAFile         string
	RequestTimeout time.Duration
	Retries        int
}

// ApplyFlags registers the flags.
func (r *Remote) ApplyFlags(fs *pflag.FlagSet) {
	fs.BoolVar(&r.PlainHTTP, "plain-http", false, "use plain HTTP instead of HTTPS for every registry")
	fs.BoolVar(&r.Insecure, "insecure", false, "skip TLS certificate verification")
	fs.StringVar(&r.CAFile, "ca-file", "", "PEM file of extra certificate authorities to trust")
	fs.DurationVar(&r.RequestTimeout, "request-timeout", 60*time.Second, "how long to wait for a registry to answer a request")
	fs.IntVar(&r.Retries, "retries", 5, "attempts per request when a registry answers 5xx/429 or drops the connection")
}

// Parse validates the flags.
func (r *Remote) Parse(*cobra.Command) error { return nil }

// Client returns a bundle client for the flags.
func (r *Remote) Client() (*bundle.Client, error) {
	return bundle.NewClient(bundle.ClientOptions{
		PlainHTTP:      r.PlainHTTP,
		Insecure:       r.Insecure,
		CAFile:         r.CAFile,
		RequestTimeout: r.RequestTimeout,
		MaxAttempts:    r.Retries,
	})
}

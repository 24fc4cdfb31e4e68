package testenv

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

const (
	// componentStartAttempts is how often a component is started again with
	// fresh ports when the ports it was given were taken before it bound them.
	componentStartAttempts = 4
	// componentStopTimeout bounds how long stopping waits for a killed process.
	componentStopTimeout = 15 * time.Second
	// probeInterval is the pause between readiness probes.
	probeInterval = 50 * time.Millisecond
)

// component describes one child process of an environment for
// startComponent.
type component struct {
	name    string // e.g. "kube-apiserver"; also names the log file <dir>/<name>.log
	bin     string
	dir     string // working directory and home of the log file
	env     []string
	mode    launchMode
	timeout time.Duration
	// args returns the command line. It is called again for every attempt,
	// so it can pick fresh ports (and remember them for ready).
	args func() ([]string, error)
	// ready probes whether the process serves; nil means ready. It must
	// honour ctx. A nil ready means "started is enough".
	ready func(ctx context.Context) error
}

func (c component) logPath() string { return c.dir + "/" + c.name + ".log" }

// startComponent starts c and waits until it is ready, retrying with fresh
// ports when its log says a port was taken. On error nothing is left running.
func startComponent(c component) (*proc, error) {
	logFile, err := os.OpenFile(c.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create %s log: %w", c.name, err)
	}
	defer logFile.Close() // the child keeps its own descriptor
	var lastErr error
	for attempt := 1; attempt <= componentStartAttempts; attempt++ {
		args, err := c.args()
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(logFile, "--- testenv: starting %s (attempt %d): %s %s\n", c.name, attempt, c.bin, strings.Join(args, " "))
		offset := fileSize(c.logPath())
		p, err := launch(procSpec{name: c.name, path: c.bin, args: args, env: c.env, dir: c.dir, log: logFile, mode: c.mode})
		if err != nil {
			return nil, err
		}
		started := time.Now()
		err = waitReady(p, c.name, c.timeout, c.logPath(), offset, c.ready)
		if err == nil {
			tracef("%s ready in %.2fs", c.name, time.Since(started).Seconds())
			return p, nil
		}
		lastErr = err
		if stopErr := p.stop(componentStopTimeout); stopErr != nil {
			return nil, errors.Join(err, stopErr)
		}
		if !errors.Is(err, errPortTaken) {
			break
		}
	}
	return nil, lastErr
}

// waitReady polls ready until it succeeds, the process exits or timeout
// passes. The process's output starts at logOffset in logPath.
func waitReady(p *proc, name string, timeout time.Duration, logPath string, logOffset int64, ready func(context.Context) error) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { // abandon an in-flight probe as soon as the process dies
		select {
		case <-p.exited:
			cancel()
		case <-ctx.Done():
		}
	}()
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-p.exited:
			out := readLogFrom(logPath, logOffset)
			if strings.Contains(strings.ToLower(out), "address already in use") {
				return fmt.Errorf("%s exited: %w", name, errPortTaken)
			}
			return fmt.Errorf("%s exited during startup (%v); its log ends:\n%s", name, p.err, lastLines(out, 30))
		default:
		}
		if ready == nil {
			return nil
		}
		pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
		err := ready(pctx)
		pcancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %v: %w; its log ends:\n%s", name, timeout, err,
				lastLines(readLogFrom(logPath, logOffset), 30))
		}
		time.Sleep(probeInterval)
	}
}

// serveChild is the whole life of a child process that is this binary
// re-executed to play role (the simulated kubelet, the embedded Redis): it
// runs serve until SIGTERM or an interrupt cancels its context, then exits,
// with status 1 and the error on stderr if serve failed otherwise.
func serveChild(role string, serve func(ctx context.Context) error) {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	err := serve(ctx)
	stop()
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintf(os.Stderr, "%s: %v\n", role, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// traceStart is when this process loaded testenv, for tracef.
var traceStart = time.Now()

// tracef prints a startup timing line to stderr when FERRY_TESTENV_TRACE is
// set.
func tracef(format string, args ...any) {
	if os.Getenv("FERRY_TESTENV_TRACE") != "" {
		fmt.Fprintf(os.Stderr, "testenv: %7.2fs "+format+"\n", append([]any{time.Since(traceStart).Seconds()}, args...)...)
	}
}

// httpProbe returns a readiness probe that GETs url and wants status 200.
// caPEM, if set, is the CA the server's certificate must chain to; token,
// if set, is sent as a bearer token.
func httpProbe(url string, caPEM []byte, token string) func(context.Context) error {
	tr := &http.Transport{Proxy: nil, DisableKeepAlives: true}
	if caPEM != nil {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(caPEM)
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	client := &http.Client{Transport: tr}
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("probe request: %w", err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s answered %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
		}
		return nil
	}
}

// freePorts returns n distinct free loopback ports.
func freePorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("pick a free port: %w", err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// childEnv returns this process's environment without the variables the
// children must not inherit (drop are name prefixes), plus extra.
func childEnv(drop []string, extra ...string) []string {
	env := filterEnvPrefix(os.Environ(), drop...)
	env = append(env, "NO_PROXY=127.0.0.1,localhost", "no_proxy=127.0.0.1,localhost")
	return append(env, extra...)
}

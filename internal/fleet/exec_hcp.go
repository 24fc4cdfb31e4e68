package fleet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"text/template"
	"time"

	tfe "github.com/hashicorp/go-tfe"
	"go.yaml.in/yaml/v3"
)

// Defaults of the hcp-terraform executor.
const (
	DefaultHCPAddress      = "https://app.terraform.io"
	DefaultHCPTokenEnv     = "TFE_TOKEN"
	DefaultHCPWorkspace    = "{{.Target.Name}}"
	DefaultHCPPollInterval = 2 * time.Second
	DefaultHCPPollMax      = 30 * time.Second
	DefaultHCPAPIRetries   = 5
	DefaultHCPAPIRetryWait = time.Second
	// hcpRequestTimeout bounds one API request (unless HTTPClient has a timeout of its own).
	hcpRequestTimeout = time.Minute
	// hcpCancelTimeout bounds the requests that cancel a run after the rollout was cancelled.
	hcpCancelTimeout = 30 * time.Second
)

// HCPTerraformSettings configure the hcp-terraform executor (fleet.yaml: executor:
// {type: hcp-terraform, …}). The API token is read from the environment variable TokenEnv, never
// from fleet.yaml, and is never written to the output or an error.
type HCPTerraformSettings struct {
	// Organization is the HCP Terraform (or Terraform Enterprise) organization. Required.
	Organization string `yaml:"organization" json:"organization"`
	// Address is the API's address. Default https://app.terraform.io. Plain http is refused
	// except on loopback, so the token never travels in clear text.
	Address string `yaml:"address,omitempty" json:"address,omitempty"`
	// TokenEnv names the environment variable holding the API token (a team token with
	// permission to queue and apply runs). Default TFE_TOKEN.
	TokenEnv string `yaml:"tokenEnv,omitempty" json:"tokenEnv,omitempty"`
	// Workspace is the target's workspace name when the target names none (Target.Workspace),
	// a Go template over {{.Target}} and {{.Bundle}}. Default "{{.Target.Name}}"; e.g.
	// "customer-{{.Target.Name}}".
	Workspace string `yaml:"workspace,omitempty" json:"workspace,omitempty"`
	// Variable is the root module variable the pinned bundle reference is passed to as a run
	// variable. Default "bundle".
	Variable string `yaml:"variable,omitempty" json:"variable,omitempty"`
	// Vars are further run variables: name → Go template; each value is passed as an HCL
	// string literal.
	Vars map[string]string `yaml:"vars,omitempty" json:"vars,omitempty"`
	// AutoApply applies the run without a person's confirmation (the run's auto-apply, or a
	// confirmation through the API where the server ignores it). With false, a run that waits
	// for confirmation is reported as class approval and left for a person. Default true.
	AutoApply *bool `yaml:"autoApply,omitempty" json:"autoApply,omitempty"`
	// PollInterval is the first wait between two reads of the run; it doubles while the run's
	// status does not change, up to PollMaxInterval. Defaults 2s and 30s.
	PollInterval    time.Duration `yaml:"pollInterval,omitempty" json:"pollInterval,omitempty"`
	PollMaxInterval time.Duration `yaml:"pollMaxInterval,omitempty" json:"pollMaxInterval,omitempty"`
	// APIRetries is how many consecutive 429 or 5xx answers a target's requests tolerate before
	// it fails as transient; APIRetryWait the first wait before a 5xx retry (doubling; a 429
	// waits as the server's X-RateLimit-Reset says). Defaults 5 and 1s. A write (POST) that got
	// a 5xx is never repeated: the server may have done it.
	APIRetries   int           `yaml:"apiRetries,omitempty" json:"apiRetries,omitempty"`
	APIRetryWait time.Duration `yaml:"apiRetryWait,omitempty" json:"apiRetryWait,omitempty"`

	// HTTPClient is the client the API is reached with; default a client of its own whose
	// requests time out after a minute.
	HTTPClient *http.Client `yaml:"-" json:"-"`
}

// HCPTerraform is the hcp-terraform executor: it queues an API-driven run in the target's HCP
// Terraform workspace with the bundle as a run variable (the official client,
// github.com/hashicorp/go-tfe), follows it to a final status and classifies it.
type HCPTerraform struct {
	org        string
	address    string
	token      func() string // a function, so that printing the executor never shows the token
	workspace  *template.Template
	variable   string
	vars       map[string]*template.Template
	autoApply  bool
	poll       time.Duration
	pollMax    time.Duration
	retries    int
	retryWait  time.Duration
	httpClient *http.Client

	mu     sync.Mutex
	client *tfe.Client
}

// NewHCPTerraform checks s, reads the token from the environment and returns an hcp-terraform
// executor. It does not contact the API: the first Apply does.
func NewHCPTerraform(s HCPTerraformSettings) (*HCPTerraform, error) {
	if s.Organization == "" {
		return nil, errors.New("hcp-terraform executor: organization is required")
	}
	e := &HCPTerraform{
		org: s.Organization, address: s.Address, variable: s.Variable, autoApply: true,
		poll: s.PollInterval, pollMax: s.PollMaxInterval, retries: s.APIRetries, retryWait: s.APIRetryWait,
	}
	if e.address == "" {
		e.address = DefaultHCPAddress
	}
	e.address = strings.TrimRight(e.address, "/")
	u, err := url.Parse(e.address)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("hcp-terraform executor: address %q is not an http(s) URL", e.address)
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return nil, fmt.Errorf("hcp-terraform executor: address %q: plain http would send the token in clear text; use https", e.address)
	}
	tokenEnv := s.TokenEnv
	if tokenEnv == "" {
		tokenEnv = DefaultHCPTokenEnv
	}
	token := os.Getenv(tokenEnv)
	if token == "" {
		return nil, fmt.Errorf("hcp-terraform executor: the API token is missing: set %s", tokenEnv)
	}
	e.token = func() string { return token }
	ws := s.Workspace
	if ws == "" {
		ws = DefaultHCPWorkspace
	}
	if e.workspace, err = parseTemplate("workspace", ws); err != nil {
		return nil, fmt.Errorf("hcp-terraform executor: %w", err)
	}
	if e.variable == "" {
		e.variable = "bundle"
	}
	if !validVarName(e.variable) {
		return nil, fmt.Errorf("hcp-terraform executor: variable %q is not a Terraform variable name", e.variable)
	}
	for name := range s.Vars {
		if !validVarName(name) || name == e.variable {
			return nil, fmt.Errorf("hcp-terraform executor: vars: %q is not a variable name or is the bundle's", name)
		}
	}
	if e.vars, err = parseTemplates("vars", s.Vars); err != nil {
		return nil, fmt.Errorf("hcp-terraform executor: %w", err)
	}
	if s.AutoApply != nil {
		e.autoApply = *s.AutoApply
	}
	if e.poll <= 0 {
		e.poll = DefaultHCPPollInterval
	}
	if e.pollMax <= 0 {
		e.pollMax = DefaultHCPPollMax
	}
	if e.pollMax < e.poll {
		e.pollMax = e.poll
	}
	if e.retries <= 0 {
		e.retries = DefaultHCPAPIRetries
	}
	if e.retryWait <= 0 {
		e.retryWait = DefaultHCPAPIRetryWait
	}
	base := s.HTTPClient
	if base == nil {
		base = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	hc := *base
	if hc.Timeout == 0 {
		// go-tfe's version check runs without a context: never let it hang.
		hc.Timeout = hcpRequestTimeout
	}
	rt := hc.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	hc.Transport = &retryTransport{base: rt, wait: e.retryWait}
	e.httpClient = &hc
	return e, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Name returns "hcp-terraform".
func (e *HCPTerraform) Name() string { return "hcp-terraform" }

// api returns the client, creating it on first use (go-tfe reads the API's version and rate
// limit then).
func (e *HCPTerraform) api() (*tfe.Client, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.client != nil {
		return e.client, nil
	}
	c, err := tfe.NewClient(&tfe.Config{
		Address:    e.address,
		Token:      e.token(),
		HTTPClient: e.httpClient,
		// 5xx are retried by retryTransport, within the target's budget; go-tfe retries 429.
		RetryServerErrors: false,
	})
	if err != nil {
		return nil, err
	}
	e.client = c
	return c, nil
}

// Apply queues a run in t's workspace with b.Pinned() as the bundle variable and follows it to
// a final status. The run's URL and each status change are written to out. When ctx is
// cancelled the run is cancelled (or its plan discarded) through the API, and Apply returns
// without waiting for it to stop.
func (e *HCPTerraform) Apply(ctx context.Context, t Target, b Bundle, out io.Writer) error {
	data := templateData{Target: t, Bundle: b}
	wsName := t.Workspace
	if wsName == "" {
		s, err := execTemplate(e.workspace, data)
		if err != nil {
			return &ClassError{Class: classPermanent, Err: fmt.Errorf("target %s: %w", t.Name, err)}
		}
		wsName = s
	}
	vars, err := execTemplates(e.vars, data)
	if err != nil {
		return &ClassError{Class: classPermanent, Err: fmt.Errorf("target %s: %w", t.Name, err)}
	}
	fail := func(what string, err error) error {
		if ctx.Err() != nil {
			return fmt.Errorf("target %s: %s: %w", t.Name, what, context.Cause(ctx))
		}
		return &ClassError{Class: apiErrorClass(err), Err: fmt.Errorf("target %s: %s: %w", t.Name, what, err)}
	}
	ctx = context.WithValue(ctx, budgetKey{}, &apiBudget{max: e.retries})
	c, err := e.api()
	if err != nil {
		return fail("HCP Terraform at "+e.address, err)
	}
	ws, err := c.Workspaces.Read(ctx, e.org, wsName)
	if err != nil {
		if errors.Is(err, tfe.ErrResourceNotFound) {
			err = fmt.Errorf("%w (the workspace does not exist, or the token may not read it)", err)
		}
		return fail(fmt.Sprintf("workspace %s/%s", e.org, wsName), err)
	}
	if ws.Locked {
		return &ClassError{Class: classConflict, Err: fmt.Errorf("target %s: workspace %s/%s is locked: another run or a person holds it; ferry never overrides it", t.Name, e.org, wsName)}
	}
	opts := tfe.RunCreateOptions{
		Workspace: ws,
		Message:   tfe.String(fmt.Sprintf("ferry: %s to %s", b.Pinned(), t.Name)),
		Variables: []*tfe.RunVariable{{Key: e.variable, Value: hclString(b.Pinned())}},
	}
	names := make([]string, 0, len(vars))
	for k := range vars {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		opts.Variables = append(opts.Variables, &tfe.RunVariable{Key: k, Value: hclString(vars[k])})
	}
	if e.autoApply {
		opts.AutoApply = tfe.Bool(true)
	}
	run, err := c.Runs.Create(ctx, opts)
	if err != nil {
		return fail(fmt.Sprintf("create a run in workspace %s/%s", e.org, wsName), err)
	}
	runURL := fmt.Sprintf("%s/app/%s/workspaces/%s/runs/%s", e.address, url.PathEscape(e.org), url.PathEscape(wsName), url.PathEscape(run.ID))
	fmt.Fprintf(out, "hcp-terraform: run %s in workspace %s/%s: %s\n", run.ID, e.org, wsName, runURL)
	fmt.Fprintf(out, "hcp-terraform: run %s: %s\n", run.ID, run.Status)

	last, confirmed := run.Status, false
	wait := e.poll
	for {
		state, class, msg := e.judge(run, confirmed)
		switch state {
		case runDone:
			return nil
		case runFailed:
			return &ClassError{Class: class, Err: fmt.Errorf("target %s: run %s %s: %s", t.Name, run.ID, msg, runURL)}
		case runConfirm:
			if err := c.Runs.Apply(ctx, run.ID, tfe.RunApplyOptions{Comment: tfe.String("ferry: " + b.Pinned())}); err != nil {
				if ctx.Err() != nil {
					return e.cancelRun(ctx, c, t, run.ID, out)
				}
				return fail("confirm run "+run.ID, err)
			}
			confirmed = true
			fmt.Fprintf(out, "hcp-terraform: run %s: confirmed by ferry\n", run.ID)
		}
		select {
		case <-ctx.Done():
			return e.cancelRun(ctx, c, t, run.ID, out)
		case <-time.After(wait):
		}
		next, err := c.Runs.Read(ctx, run.ID)
		if err != nil {
			if ctx.Err() != nil {
				return e.cancelRun(ctx, c, t, run.ID, out)
			}
			return fail("read run "+run.ID+" ("+runURL+")", err)
		}
		run = next
		if run.Status != last {
			fmt.Fprintf(out, "hcp-terraform: run %s: %s\n", run.ID, run.Status)
			last, wait = run.Status, e.poll
		} else if wait = 2 * wait; wait > e.pollMax {
			wait = e.pollMax
		}
	}
}

// runForceCanceled is the status of a force-canceled run (the API documents it; go-tfe has no
// constant for it).
const runForceCanceled tfe.RunStatus = "force_canceled"

type runState int

const (
	runGoing runState = iota
	runDone
	runFailed
	runConfirm
)

// judge decides what a run's status means for the target.
func (e *HCPTerraform) judge(r *tfe.Run, confirmed bool) (state runState, class, msg string) {
	switch r.Status {
	case tfe.RunApplied, tfe.RunPlannedAndFinished:
		return runDone, "", ""
	case tfe.RunErrored:
		return runFailed, classPermanent, "errored (its plan or apply log says why)"
	case tfe.RunCanceled, runForceCanceled:
		return runFailed, classConflict, "was canceled by someone else"
	case tfe.RunDiscarded:
		return runFailed, classPermanent, "was discarded by someone"
	case tfe.RunPolicySoftFailed:
		return runFailed, classPermanent, "failed a soft-mandatory policy"
	case tfe.RunPlannedAndSaved:
		return runFailed, classPermanent, "saved its plan without applying it"
	case tfe.RunPolicyOverride:
		return runFailed, classApproval, "waits for a person to override a soft-mandatory policy"
	case tfe.RunPostPlanAwaitingDecision:
		return runFailed, classApproval, "waits for a person's decision on a run task"
	}
	if r.Actions != nil && r.Actions.IsConfirmable && !r.AutoApply && !confirmed {
		if e.autoApply {
			return runConfirm, "", ""
		}
		return runFailed, classApproval, "waits for a person to confirm the apply"
	}
	return runGoing, "", ""
}

// cancelRun cancels the run (or discards its plan when it waits for confirmation) after ctx
// was cancelled, and returns ctx's error. It does not wait for the run to stop.
func (e *HCPTerraform) cancelRun(ctx context.Context, c *tfe.Client, t Target, runID string, out io.Writer) error {
	cause := context.Cause(ctx)
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), hcpCancelTimeout)
	defer cancel()
	comment := tfe.String("ferry: the rollout was cancelled")
	what := "cancel"
	run, err := c.Runs.Read(cctx, runID)
	if err == nil {
		switch {
		case run.Actions != nil && run.Actions.IsCancelable:
			err = c.Runs.Cancel(cctx, runID, tfe.RunCancelOptions{Comment: comment})
		case run.Actions != nil && run.Actions.IsDiscardable:
			what = "discard"
			err = c.Runs.Discard(cctx, runID, tfe.RunDiscardOptions{Comment: comment})
		default:
			what = "nothing to cancel: " + string(run.Status)
		}
	}
	if err != nil {
		fmt.Fprintf(out, "hcp-terraform: run %s: %s failed: %v\n", runID, what, err)
		return fmt.Errorf("target %s: run %s: %w (cancelling the run failed: %v)", t.Name, runID, cause, err)
	}
	fmt.Fprintf(out, "hcp-terraform: run %s: %s requested\n", runID, what)
	return fmt.Errorf("target %s: run %s: %w", t.Name, runID, cause)
}

// hclString returns s as an HCL string literal (a run variable's value is HCL).
func hclString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; ch {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '$', '%':
			// ${ and %{ start interpolations and directives: $${ and %%{ are literal.
			b.WriteByte(ch)
			if i+1 < len(s) && s[i+1] == '{' {
				b.WriteByte(ch)
			}
		default:
			if ch < 0x20 {
				fmt.Fprintf(&b, `\u%04x`, ch)
			} else {
				b.WriteByte(ch)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

// APIStatusError is an answer of HCP Terraform that a target's requests could not get past:
// a 429 or 5xx after the retries, or a 5xx to a write that is never repeated.
type APIStatusError struct {
	Method, Path string
	Status       int
	Attempts     int
}

func (e *APIStatusError) Error() string {
	return fmt.Sprintf("%s %s: HCP Terraform answered %d %s (%d attempts)", e.Method, e.Path, e.Status, http.StatusText(e.Status), e.Attempts)
}

// apiErrorClass classifies an API error: transient for 429/5xx past the retries and for
// network errors, permanent for the rest (unauthorized, not found, invalid).
func apiErrorClass(err error) string {
	var se *APIStatusError
	if errors.As(err, &se) {
		return classTransient
	}
	var ne net.Error
	var oe *net.OpError
	if errors.As(err, &ne) || errors.As(err, &oe) {
		return classTransient
	}
	return classPermanent
}

type budgetKey struct{}

// apiBudget counts one target's consecutive 429 and 5xx answers.
type apiBudget struct {
	mu       sync.Mutex
	failures int
	max      int
}

func (b *apiBudget) fail() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failures++
	return b.failures
}

func (b *apiBudget) reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failures = 0
}

// retryTransport retries a target's GET requests on 5xx and ends its retries of 429 and 5xx at
// the target's budget (a value of the request's context), failing with an *APIStatusError.
// Requests without a budget (go-tfe's version check) pass through.
type retryTransport struct {
	base http.RoundTripper
	wait time.Duration
}

func (rt *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	b, _ := req.Context().Value(budgetKey{}).(*apiBudget)
	wait := rt.wait
	for {
		resp, err := rt.base.RoundTrip(req)
		if err != nil || b == nil {
			return resp, err
		}
		if resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode < 500 {
			b.reset()
			return resp, nil
		}
		n := b.fail()
		retry := n <= b.max
		if !retry || (resp.StatusCode != http.StatusTooManyRequests && req.Method != http.MethodGet) {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			return nil, &APIStatusError{Method: req.Method, Path: req.URL.Path, Status: resp.StatusCode, Attempts: n}
		}
		if resp.StatusCode == http.StatusTooManyRequests {
			// go-tfe waits as X-RateLimit-Reset says and repeats the request.
			return resp, nil
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		select {
		case <-req.Context().Done():
			return nil, req.Context().Err()
		case <-time.After(wait):
		}
		wait *= 2
	}
}

// newHCPTerraformExecutor is the hcp-terraform executor's ExecutorFactory.
func newHCPTerraformExecutor(settings *yaml.Node, env ExecutorEnv) (Executor, error) {
	var s HCPTerraformSettings
	if err := decodeSettings(settings, env, "hcp-terraform", &s); err != nil {
		return nil, err
	}
	e, err := NewHCPTerraform(s)
	if err != nil {
		return nil, env.Errorf(settings, "", "%s", strings.TrimPrefix(err.Error(), "hcp-terraform executor: "))
	}
	return e, nil
}

func init() { executorFactories["hcp-terraform"] = newHCPTerraformExecutor }

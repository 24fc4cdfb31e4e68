package fleet

// The hcp-terraform executor's contract tests run against a local stand-in of HCP Terraform:
// an httptest server answering exactly the endpoints the executor uses (ping, workspace read by
// name, run create, run read, and the run's apply, cancel and discard actions), with go-tfe's
// own types serialized by the JSON:API library go-tfe uses. It is a stand-in, not HCP Terraform:
// it checks the requests the official client sends and feeds it answers in HCP Terraform's
// shapes, and its runs walk through a scripted list of statuses.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	tfe "github.com/hashicorp/go-tfe"
	"github.com/hashicorp/jsonapi"
	"go.yaml.in/yaml/v3"
)

const (
	standInOrg   = "acme-org"
	standInToken = "stand-in-token.atlasv1.SECRET-never-shown"
)

// step is one status of a scripted run; a confirmable step waits for the apply action.
type step struct {
	status      tfe.RunStatus
	confirmable bool
}

// standIn is the local HCP Terraform stand-in.
type standIn struct {
	t   *testing.T
	srv *httptest.Server

	mu         sync.Mutex
	workspaces map[string]*tfe.Workspace
	script     []step // the statuses of the next run created
	runAuto    *bool  // what the created run reports as auto-apply; nil: as requested
	runs       map[string]*standInRun
	requests   []string         // "METHOD path"
	createBody []byte           // the body of the last run create
	actions    []string         // "run-1 cancel"
	failures   map[string][]int // "METHOD path prefix" → status codes answered before serving
	auth       map[string]bool  // Authorization headers seen
	onStatus   func(tfe.RunStatus)
}

type standInRun struct {
	run   *tfe.Run
	steps []step
	at    int
	acted map[string]bool
}

func newStandIn(t *testing.T) *standIn {
	s := &standIn{
		t: t, workspaces: map[string]*tfe.Workspace{}, runs: map[string]*standInRun{},
		failures: map[string][]int{}, auth: map[string]bool{},
		script: []step{{status: tfe.RunPending}, {status: tfe.RunPlanning}, {status: tfe.RunApplying}, {status: tfe.RunApplied}},
	}
	s.addWorkspace("customer-acme", false)
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *standIn) addWorkspace(name string, locked bool) {
	s.workspaces[name] = &tfe.Workspace{ID: "ws-" + name, Name: name, Locked: locked, Organization: &tfe.Organization{Name: standInOrg}}
}

// failNext makes the stand-in answer the next requests whose "METHOD path" starts with prefix
// with these status codes, one per request.
func (s *standIn) failNext(prefix string, codes ...int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures[prefix] = append(s.failures[prefix], codes...)
}

func (s *standIn) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := r.Method + " " + r.URL.Path
	s.requests = append(s.requests, key)
	s.auth[r.Header.Get("Authorization")] = true
	w.Header().Set("TFP-API-Version", "2.6")
	for prefix, codes := range s.failures {
		if strings.HasPrefix(key, prefix) && len(codes) > 0 {
			s.failures[prefix] = codes[1:]
			if codes[0] == http.StatusTooManyRequests {
				w.Header().Set("X-RateLimit-Reset", "0.01")
			}
			w.WriteHeader(codes[0])
			return
		}
	}
	const api = "/api/v2/"
	path := strings.TrimPrefix(r.URL.Path, api)
	parts := strings.Split(path, "/")
	switch {
	case r.Method == http.MethodGet && path == "ping":
		w.WriteHeader(http.StatusNoContent)
	case r.Method == http.MethodGet && len(parts) == 4 && parts[0] == "organizations" && parts[2] == "workspaces":
		ws, ok := s.workspaces[parts[3]]
		if parts[1] != standInOrg || !ok {
			s.notFound(w)
			return
		}
		s.write(w, http.StatusOK, ws)
	case r.Method == http.MethodPost && path == "runs":
		body, _ := io.ReadAll(r.Body)
		s.createBody = body
		var opts tfe.RunCreateOptions
		if err := jsonapi.UnmarshalPayload(bytes.NewReader(body), &opts); err != nil {
			s.t.Errorf("stand-in: run create body %s: %v", body, err)
			w.WriteHeader(http.StatusUnprocessableEntity)
			return
		}
		id := fmt.Sprintf("run-%d", len(s.runs)+1)
		auto := opts.AutoApply != nil && *opts.AutoApply
		if s.runAuto != nil {
			auto = *s.runAuto
		}
		sr := &standInRun{run: &tfe.Run{ID: id, AutoApply: auto, Message: deref(opts.Message)}, steps: s.script, acted: map[string]bool{}}
		s.runs[id] = sr
		s.setStatus(sr)
		s.write(w, http.StatusCreated, sr.run)
	case r.Method == http.MethodGet && len(parts) == 2 && parts[0] == "runs":
		sr, ok := s.runs[parts[1]]
		if !ok {
			s.notFound(w)
			return
		}
		cur := sr.steps[sr.at]
		if sr.at+1 < len(sr.steps) && (!cur.confirmable || sr.acted["apply"]) {
			sr.at++
		}
		s.setStatus(sr)
		s.write(w, http.StatusOK, sr.run)
	case r.Method == http.MethodPost && len(parts) == 4 && parts[0] == "runs" && parts[2] == "actions":
		sr, ok := s.runs[parts[1]]
		if !ok {
			s.notFound(w)
			return
		}
		sr.acted[parts[3]] = true
		s.actions = append(s.actions, parts[1]+" "+parts[3])
		w.WriteHeader(http.StatusAccepted)
	default:
		s.t.Errorf("stand-in: unexpected request %s", key)
		s.notFound(w)
	}
}

func (s *standIn) setStatus(sr *standInRun) {
	st := sr.steps[sr.at]
	final := map[tfe.RunStatus]bool{tfe.RunApplied: true, tfe.RunPlannedAndFinished: true, tfe.RunErrored: true,
		tfe.RunCanceled: true, tfe.RunDiscarded: true, tfe.RunPolicySoftFailed: true, runForceCanceled: true}
	sr.run.Status = st.status
	sr.run.Actions = &tfe.RunActions{
		IsCancelable:  !final[st.status] && !st.confirmable,
		IsConfirmable: st.confirmable,
		IsDiscardable: st.confirmable || st.status == tfe.RunPolicyOverride,
	}
	if s.onStatus != nil {
		s.onStatus(st.status)
	}
}

func (s *standIn) write(w http.ResponseWriter, code int, model any) {
	w.Header().Set("Content-Type", jsonapi.MediaType)
	w.WriteHeader(code)
	if err := jsonapi.MarshalPayload(w, model); err != nil {
		s.t.Errorf("stand-in: marshal %T: %v", model, err)
	}
}

func (s *standIn) notFound(w http.ResponseWriter) {
	w.Header().Set("Content-Type", jsonapi.MediaType)
	w.WriteHeader(http.StatusNotFound)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"status": "404", "title": "not found"}}})
}

func (s *standIn) snapshot() (requests, actions []string, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requests...), append([]string(nil), s.actions...), append([]byte(nil), s.createBody...)
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// newTestHCP returns an executor talking to the stand-in with short polls.
func newTestHCP(t *testing.T, s *standIn, mod func(*HCPTerraformSettings)) *HCPTerraform {
	t.Helper()
	t.Setenv("FERRY_TEST_TFE_TOKEN", standInToken)
	set := HCPTerraformSettings{
		Organization: standInOrg, Address: s.srv.URL, TokenEnv: "FERRY_TEST_TFE_TOKEN",
		Workspace:    "customer-{{.Target.Name}}",
		PollInterval: time.Millisecond, PollMaxInterval: 5 * time.Millisecond,
		APIRetries: 3, APIRetryWait: time.Millisecond,
	}
	if mod != nil {
		mod(&set)
	}
	e, err := NewHCPTerraform(set)
	if err != nil {
		t.Fatalf("NewHCPTerraform() error = %v", err)
	}
	return e
}

// noToken fails t if the token appears in the output or the error.
func noToken(t *testing.T, out string, err error) {
	t.Helper()
	if strings.Contains(out, "SECRET") {
		t.Errorf("the token appears in the output:\n%s", out)
	}
	if err != nil && strings.Contains(err.Error(), "SECRET") {
		t.Errorf("the token appears in the error: %v", err)
	}
}

// TestHCPContractApplied: the workspace is read by name, the run is created in it with the
// pinned bundle as an HCL string run variable and auto-apply, and it is followed through
// pending, planning and applying to applied, each status written to out with the run's URL.
func TestHCPContractApplied(t *testing.T) {
	s := newStandIn(t)
	e := newTestHCP(t, s, func(set *HCPTerraformSettings) { set.Vars = map[string]string{"customer": "{{.Target.Name}}"} })
	var out bytes.Buffer
	err := e.Apply(context.Background(), Target{Name: "acme"}, testBundle, &out)
	noToken(t, out.String(), err)
	if err != nil {
		t.Fatalf("Apply() error = %v\noutput:\n%s", err, out.String())
	}
	requests, actions, body := s.snapshot()
	wantRequests := []string{
		"GET /api/v2/ping",
		"GET /api/v2/organizations/acme-org/workspaces/customer-acme",
		"POST /api/v2/runs",
		"GET /api/v2/runs/run-1", "GET /api/v2/runs/run-1", "GET /api/v2/runs/run-1",
	}
	if strings.Join(requests, "\n") != strings.Join(wantRequests, "\n") {
		t.Errorf("requests = %q, want %q", requests, wantRequests)
	}
	if len(actions) != 0 {
		t.Errorf("actions = %q, want none (the run auto-applies)", actions)
	}
	if !s.auth["Bearer "+standInToken] || len(s.auth) != 1 {
		t.Errorf("Authorization headers = %v, want only the token from the environment", s.auth)
	}
	// The body the client sent, as JSON:API.
	var doc struct {
		Data struct {
			Type       string `json:"type"`
			Attributes struct {
				AutoApply bool              `json:"auto-apply"`
				Message   string            `json:"message"`
				Variables []tfe.RunVariable `json:"variables"`
			} `json:"attributes"`
			Relationships struct {
				Workspace struct {
					Data struct{ Type, ID string } `json:"data"`
				} `json:"workspace"`
			} `json:"relationships"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("run create body %s: %v", body, err)
	}
	d := doc.Data
	wantVars := []tfe.RunVariable{{Key: "bundle", Value: `"` + testBundle.Pinned() + `"`}, {Key: "customer", Value: `"acme"`}}
	if d.Type != "runs" || !d.Attributes.AutoApply || d.Relationships.Workspace.Data.ID != "ws-customer-acme" || d.Relationships.Workspace.Data.Type != "workspaces" {
		t.Errorf("run create body = %s", body)
	}
	if fmt.Sprint(d.Attributes.Variables) != fmt.Sprint(wantVars) {
		t.Errorf("run variables = %v, want %v", d.Attributes.Variables, wantVars)
	}
	if !strings.Contains(d.Attributes.Message, testBundle.Pinned()) {
		t.Errorf("run message = %q, want the bundle", d.Attributes.Message)
	}
	wantOut := []string{
		"run run-1 in workspace acme-org/customer-acme: " + s.srv.URL + "/app/acme-org/workspaces/customer-acme/runs/run-1",
		"run-1: pending\n", "run-1: planning\n", "run-1: applying\n", "run-1: applied\n",
	}
	last := -1
	for _, w := range wantOut {
		i := strings.Index(out.String(), w)
		if i <= last {
			t.Errorf("output does not have %q after the previous line:\n%s", w, out.String())
		}
		last = i
	}
}

// TestHCPContractOutcomes: each final or waiting status of a run and each workspace problem
// ends with its class.
func TestHCPContractOutcomes(t *testing.T) {
	tests := []struct {
		name      string
		script    []step
		workspace string
		locked    bool
		autoApply bool
		want      string
		wantErr   string
	}{
		{name: "errored", script: []step{{status: tfe.RunPlanning}, {status: tfe.RunErrored}}, autoApply: true, want: "permanent", wantErr: "errored"},
		{name: "no changes", script: []step{{status: tfe.RunPlanning}, {status: tfe.RunPlannedAndFinished}}, autoApply: true},
		{name: "canceled by someone else", script: []step{{status: tfe.RunPlanning}, {status: tfe.RunCanceled}}, autoApply: true, want: "conflict", wantErr: "canceled by someone else"},
		{name: "discarded by someone", script: []step{{status: tfe.RunPlanning}, {status: tfe.RunDiscarded}}, autoApply: true, want: "permanent", wantErr: "discarded"},
		{name: "awaits confirmation", script: []step{{status: tfe.RunPlanning}, {status: tfe.RunPlanned, confirmable: true}}, want: "approval", wantErr: "confirm"},
		{name: "policy override", script: []step{{status: tfe.RunPolicyChecking}, {status: tfe.RunPolicyOverride}}, autoApply: true, want: "approval", wantErr: "override"},
		{name: "policy soft failed", script: []step{{status: tfe.RunPolicyChecking}, {status: tfe.RunPolicySoftFailed}}, autoApply: true, want: "permanent", wantErr: "soft-mandatory"},
		{name: "workspace missing", workspace: "customer-{{.Target.Name}}-missing", autoApply: true, want: "permanent", wantErr: "does not exist"},
		{name: "workspace locked", locked: true, autoApply: true, want: "conflict", wantErr: "locked"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStandIn(t)
			if tt.script != nil {
				s.script = tt.script
			}
			if tt.locked {
				s.addWorkspace("customer-acme", true)
			}
			e := newTestHCP(t, s, func(set *HCPTerraformSettings) {
				set.AutoApply = &tt.autoApply
				if tt.workspace != "" {
					set.Workspace = tt.workspace
				}
			})
			var out bytes.Buffer
			err := e.Apply(context.Background(), Target{Name: "acme"}, testBundle, &out)
			noToken(t, out.String(), err)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Apply() error = %v, want nil", err)
				}
				return
			}
			var ce *ClassError
			if !errors.As(err, &ce) || ce.Class != tt.want {
				t.Fatalf("Apply() error = %v, want class %s\noutput:\n%s", err, tt.want, out.String())
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Apply() error = %q, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

// TestHCPContractConfirm: a run that waits for confirmation although ferry asked for auto-apply
// (a server that ignores the run's auto-apply) is confirmed through the API once and followed
// to applied.
func TestHCPContractConfirm(t *testing.T) {
	s := newStandIn(t)
	no := false
	s.runAuto = &no
	s.script = []step{{status: tfe.RunPlanning}, {status: tfe.RunPlanned, confirmable: true}, {status: tfe.RunApplying}, {status: tfe.RunApplied}}
	e := newTestHCP(t, s, nil)
	var out bytes.Buffer
	err := e.Apply(context.Background(), Target{Name: "acme"}, testBundle, &out)
	noToken(t, out.String(), err)
	if err != nil {
		t.Fatalf("Apply() error = %v\noutput:\n%s", err, out.String())
	}
	_, actions, _ := s.snapshot()
	if strings.Join(actions, ",") != "run-1 apply" {
		t.Errorf("actions = %q, want one apply", actions)
	}
	if !strings.Contains(out.String(), "run-1: confirmed by ferry") || !strings.HasSuffix(out.String(), "run-1: applied\n") {
		t.Errorf("output:\n%s", out.String())
	}
}

// TestHCPContractRetries: a 429 is waited out and the run followed to its end; 5xx answers to
// reads are retried; past the retries, or a 5xx to the run's creation (never repeated), the
// target fails as transient.
func TestHCPContractRetries(t *testing.T) {
	t.Run("429 then success", func(t *testing.T) {
		s := newStandIn(t)
		s.failNext("GET /api/v2/organizations/", http.StatusTooManyRequests)
		s.failNext("GET /api/v2/runs/", http.StatusTooManyRequests, http.StatusTooManyRequests)
		e := newTestHCP(t, s, nil)
		var out bytes.Buffer
		err := e.Apply(context.Background(), Target{Name: "acme"}, testBundle, &out)
		noToken(t, out.String(), err)
		if err != nil {
			t.Fatalf("Apply() error = %v\noutput:\n%s", err, out.String())
		}
		requests, _, _ := s.snapshot()
		if n := strings.Count(strings.Join(requests, "\n"), "GET /api/v2/organizations/acme-org/workspaces/customer-acme"); n != 2 {
			t.Errorf("workspace reads = %d, want 2 (one 429, one answer)", n)
		}
		if !strings.HasSuffix(out.String(), "run-1: applied\n") {
			t.Errorf("output:\n%s", out.String())
		}
	})
	t.Run("503 on reads then success", func(t *testing.T) {
		s := newStandIn(t)
		s.failNext("GET /api/v2/runs/", http.StatusServiceUnavailable, http.StatusBadGateway)
		e := newTestHCP(t, s, nil)
		err := e.Apply(context.Background(), Target{Name: "acme"}, testBundle, &bytes.Buffer{})
		if err != nil {
			t.Fatalf("Apply() error = %v", err)
		}
	})
	tests := []struct {
		name   string
		prefix string
		codes  []int
	}{
		{"429 past the retries", "GET /api/v2/runs/", []int{429, 429, 429, 429, 429}},
		{"503 past the retries", "GET /api/v2/organizations/", []int{503, 503, 503, 503, 503}},
		{"500 to the run create", "POST /api/v2/runs", []int{500}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStandIn(t)
			s.failNext(tt.prefix, tt.codes...)
			e := newTestHCP(t, s, nil)
			var out bytes.Buffer
			err := e.Apply(context.Background(), Target{Name: "acme"}, testBundle, &out)
			noToken(t, out.String(), err)
			var ce *ClassError
			if !errors.As(err, &ce) || ce.Class != "transient" {
				t.Fatalf("Apply() error = %v, want class transient", err)
			}
			var se *APIStatusError
			if !errors.As(err, &se) || se.Status != tt.codes[0] {
				t.Errorf("Apply() error = %v, want an *APIStatusError with status %d", err, tt.codes[0])
			}
			requests, _, _ := s.snapshot()
			if tt.prefix == "POST /api/v2/runs" && strings.Count(strings.Join(requests, "\n"), tt.prefix) != 1 {
				t.Errorf("requests = %q, want the run create sent once", requests)
			}
		})
	}
}

// TestHCPContractCancel: cancelling the rollout cancels the run through the API (a run waiting
// for confirmation is discarded instead), and Apply returns the context's error, without class.
func TestHCPContractCancel(t *testing.T) {
	tests := []struct {
		name   string
		script []step
		at     tfe.RunStatus
		action string
		auto   bool
	}{
		{"planning", []step{{status: tfe.RunPending}, {status: tfe.RunPlanning}}, tfe.RunPlanning, "cancel", true},
		{"awaiting confirmation", []step{{status: tfe.RunPlanning}, {status: tfe.RunPlanned, confirmable: true}}, tfe.RunPlanned, "discard", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStandIn(t)
			s.script = tt.script
			auto := tt.auto
			s.runAuto = &auto
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			reached := make(chan struct{})
			var once sync.Once
			s.onStatus = func(st tfe.RunStatus) {
				if st == tt.at {
					once.Do(func() { close(reached) })
				}
			}
			e := newTestHCP(t, s, func(set *HCPTerraformSettings) { set.AutoApply = &auto; set.PollMaxInterval = time.Millisecond })
			if !tt.auto {
				// Waiting for a confirmation with autoApply false is class approval at once;
				// with autoApply true the executor confirms. Keep the run waiting: the server
				// reports auto-apply, so neither happens, and the run waits until cancelled.
				yes := true
				s.runAuto = &yes
			}
			done := make(chan error, 1)
			out := &syncBuffer{}
			go func() { done <- e.Apply(ctx, Target{Name: "acme"}, testBundle, out) }()
			select {
			case <-reached:
			case err := <-done:
				t.Fatalf("Apply() ended before the run reached %s: %v\n%s", tt.at, err, out.String())
			}
			cancel()
			err := <-done
			noToken(t, out.String(), err)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Apply() error = %v, want context.Canceled", err)
			}
			var ce *ClassError
			if errors.As(err, &ce) {
				t.Errorf("Apply() error has class %s, want none", ce.Class)
			}
			_, actions, _ := s.snapshot()
			if strings.Join(actions, ",") != "run-1 "+tt.action {
				t.Errorf("actions = %q, want %q", actions, "run-1 "+tt.action)
			}
			if !strings.Contains(out.String(), tt.action+" requested") {
				t.Errorf("output:\n%s", out.String())
			}
		})
	}
}

// TestHCPSettings: the settings from fleet.yaml, the token from the environment only, and the
// refusal of plain http off loopback.
func TestHCPSettings(t *testing.T) {
	node := func(src string) *yaml.Node {
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
			t.Fatal(err)
		}
		return doc.Content[0]
	}
	t.Setenv("TFE_TOKEN", standInToken)
	ex, err := NewExecutor("hcp-terraform", node("organization: acme-org\nworkspace: 'customer-{{.Target.Name}}'\nautoApply: false\npollInterval: 5s\n"), ExecutorEnv{File: "fleet.yaml"})
	if err != nil {
		t.Fatalf("NewExecutor() error = %v", err)
	}
	h := ex.(*HCPTerraform)
	if h.Name() != "hcp-terraform" || h.address != DefaultHCPAddress || h.autoApply || h.poll != 5*time.Second || h.variable != "bundle" {
		t.Errorf("NewExecutor() = %v", h)
	}
	if s := fmt.Sprintf("%+v %#v", h, h); strings.Contains(s, "SECRET") {
		t.Errorf("printing the executor shows the token: %s", s)
	}
	for _, tt := range []struct{ src, want string }{
		{"workspace: x\n", "organization is required"},
		{"organization: o\naddress: http://tfe.example.com\n", "clear text"},
		{"organization: o\ntoken: abc\n", "unknown field"},
		{"organization: o\ntokenEnv: FERRY_TEST_NO_SUCH_VARIABLE\n", "set FERRY_TEST_NO_SUCH_VARIABLE"},
	} {
		_, err := NewExecutor("hcp-terraform", node(tt.src), ExecutorEnv{File: "fleet.yaml"})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("NewExecutor(%q) error = %v, want one containing %q", tt.src, err, tt.want)
		}
	}
}

// TestHCLString: run variable values are HCL string literals.
func TestHCLString(t *testing.T) {
	for in, want := range map[string]string{
		"r.example.com/a@sha256:ab": `"r.example.com/a@sha256:ab"`,
		`say "hi"\n`:                `"say \"hi\"\\n"`,
		"${var.x} %{if} $5 %d":      `"$${var.x} %%{if} $5 %d"`,
		"a\nb\tc\x01":               `"a\nb\tc\u0001"`,
	} {
		if got := hclString(in); got != want {
			t.Errorf("hclString(%q) = %s, want %s", in, got, want)
		}
	}
}

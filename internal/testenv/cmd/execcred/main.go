// Command execcred is a Kubernetes exec credential plugin for tests
// (client.authentication.k8s.io/v1): it checks the ExecCredential in
// KUBERNETES_EXEC_INFO and prints one with the token read from the file named
// by EXECCRED_TOKEN_FILE, valid for an hour. With EXECCRED_FAIL set it writes
// that message to standard error and exits 1, as a plugin whose login expired
// does. Each run appends KUBERNETES_EXEC_INFO as one line to EXECCRED_LOG, if
// set. Build it with testenv.BuildCommand(t, "execcred").
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"
)

const apiVersion = "client.authentication.k8s.io/v1"

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run() error {
	info := os.Getenv("KUBERNETES_EXEC_INFO")
	if log := os.Getenv("EXECCRED_LOG"); log != "" {
		f, err := os.OpenFile(log, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		fmt.Fprintln(f, info)
		f.Close()
	}
	if msg := os.Getenv("EXECCRED_FAIL"); msg != "" {
		return fmt.Errorf("%s", msg)
	}
	var in struct {
		APIVersion, Kind string
		Spec             struct{ Interactive bool }
	}
	if err := json.Unmarshal([]byte(info), &in); err != nil {
		return fmt.Errorf("execcred: KUBERNETES_EXEC_INFO: %v", err)
	}
	if in.APIVersion != apiVersion || in.Kind != "ExecCredential" {
		return fmt.Errorf("execcred: KUBERNETES_EXEC_INFO is %s %s, want %s ExecCredential", in.APIVersion, in.Kind, apiVersion)
	}
	token, err := os.ReadFile(os.Getenv("EXECCRED_TOKEN_FILE"))
	if err != nil {
		return fmt.Errorf("execcred: EXECCRED_TOKEN_FILE: %v", err)
	}
	out := map[string]any{
		"apiVersion": apiVersion,
		"kind":       "ExecCredential",
		"status": map[string]any{
			"token":               strings.TrimSpace(string(token)),
			"expirationTimestamp": time.Now().Add(time.Hour).UTC().Format(time.RFC3339),
		},
	}
	return json.NewEncoder(os.Stdout).Encode(out)
}

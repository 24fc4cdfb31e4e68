// Command docker-credential-ferrytest is a docker credential helper for tests,
// speaking the protocol of docker/docker-credential-helpers: the action is the
// only argument (get, store, erase, list), the input is on standard input, and
// a failure is a message on standard output with exit code 1. Credentials are
// kept in the JSON file named by FERRYTEST_CREDS ({"host": {"Username": …,
// "Secret": …}}). With FERRYTEST_FAIL set, every action fails with that
// message. Each run appends "ACTION SERVER" to FERRYTEST_LOG, if set. Build it
// with testenv.BuildCommand(t, "docker-credential-ferrytest").
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
)

// errNotFound is the message docker's helpers use; clients treat it as "no credential".
const errNotFound = "credentials not found in native keychain"

type cred struct{ Username, Secret string }

func main() {
	if err := run(); err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
}

func run() error {
	if len(os.Args) != 2 {
		return errors.New("usage: docker-credential-ferrytest get|store|erase|list")
	}
	action := os.Args[1]
	in, err := io.ReadAll(os.Stdin)
	if err != nil {
		return err
	}
	server := strings.TrimSpace(string(in))
	if log := os.Getenv("FERRYTEST_LOG"); log != "" {
		logged := server
		if action == "store" {
			var c struct{ ServerURL string }
			_ = json.Unmarshal(in, &c)
			logged = c.ServerURL
		}
		f, err := os.OpenFile(log, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		fmt.Fprintln(f, action, logged)
		f.Close()
	}
	if msg := os.Getenv("FERRYTEST_FAIL"); msg != "" {
		return errors.New(msg)
	}
	path := os.Getenv("FERRYTEST_CREDS")
	if path == "" {
		return errors.New("FERRYTEST_CREDS is not set")
	}
	creds := map[string]cred{}
	if data, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(data, &creds); err != nil {
			return err
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if creds == nil { // the file held null
		creds = map[string]cred{}
	}
	switch action {
	case "get":
		c, ok := creds[server]
		if !ok {
			return errors.New(errNotFound)
		}
		return json.NewEncoder(os.Stdout).Encode(map[string]string{"ServerURL": server, "Username": c.Username, "Secret": c.Secret})
	case "list":
		users := map[string]string{}
		for s, c := range creds {
			users[s] = c.Username
		}
		return json.NewEncoder(os.Stdout).Encode(users)
	case "store":
		var c struct{ ServerURL, Username, Secret string }
		if err := json.Unmarshal(in, &c); err != nil {
			return err
		}
		creds[c.ServerURL] = cred{c.Username, c.Secret}
	case "erase":
		if _, ok := creds[server]; !ok {
			return errors.New(errNotFound)
		}
		delete(creds, server)
	default:
		return fmt.Errorf("unknown action %q", action)
	}
	data, err := json.Marshal(creds)
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o600)
}

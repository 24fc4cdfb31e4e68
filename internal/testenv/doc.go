// Package testenv owns the real processes tests talk to: a CNCF Distribution
// registry started as a child process (StartRegistry), the pinned tool
// binaries it needs (Tool, tools.sh), and a fault-injecting loopback proxy
// (StartFaultProxy) for exercising retries and error paths with oras-go.
//
// Every process testenv starts is tied to the test that started it: it is
// killed, together with its process group, and waited for in a t.Cleanup.
// Test binaries that use testenv should call Main from TestMain so a leaked
// child process fails the run:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
//
// The binaries are cached outside the repository, keyed by version (see
// tools.sh); run `make tools` (internal/testenv/tools.sh install all) ahead of
// time to avoid building them on first use.
package testenv

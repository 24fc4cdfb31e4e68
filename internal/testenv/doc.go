// Package testenv owns the real processes tests talk to, all started as
// child processes on loopback from pinned binaries:
//
//   - a CNCF Distribution registry (StartRegistry), with a fault-injecting
//     loopback proxy (StartFaultProxy) for exercising retries and error paths;
//   - a Kubernetes control plane (StartCluster): etcd, kube-apiserver and
//     kube-controller-manager, no nodes;
//   - Argo CD (StartArgoCD): Redis, the repo-server and the application
//     controller, configured for the cluster and the registry. Redis is
//     redis-server when it is on PATH, else the embedded Redis: miniredis
//     served by this binary re-executed (RedisEnv forces it);
//   - all of them at once (Start), or shared by every test of a package
//     (NewShared), or detached for people (cmd/testenv, make testenv-up).
//
// Every process testenv starts is tied to the test (or the Shared
// environment) that started it: it is killed, together with its process
// group, and waited for in a t.Cleanup (or by Main), and the kernel kills it
// if the test binary dies. Test binaries that use testenv must call Main
// from TestMain, so a leaked child process fails the run:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
//
// # Sharing one environment
//
// A cluster with Argo CD starts in about 7-10 s on two cores. Tests that can
// share one should: declare a Shared environment per package and keep tests
// apart with their own namespaces, Application names and repositories.
//
//	var env = testenv.NewShared(testenv.Options{Registry: true, ArgoCD: true})
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
//
//	func TestSync(t *testing.T) {
//		e := env.Get(t) // the first Get starts it; Main stops it after the last test
//		ns := e.Cluster.CreateNamespace(t, "sync")
//		...
//	}
//
// Tests that break the environment on purpose (stop the registry, kill the
// controller, change argocd-cm) use Start or the Start* functions instead.
// Argo CD's controller and repo-server take about 0.9 GiB together: keep the
// number of environments alive at once low.
//
// # Binaries
//
// The binaries are cached outside the repository, keyed by version (see
// tools.sh, which also generates the tools modules Kubernetes, etcd and Argo
// CD are built from); run `make tools` (internal/testenv/tools.sh install
// all) ahead of time: a cold build of everything takes well over ten
// minutes. Redis needs no binary: without the Debian package redis-server
// the embedded one (a go.mod dependency) runs.
// The Argo CD CRDs are read at run time from the Go module cache
// (ArgoCDCRDDir), never copied into the repository.
//
// # Short mode
//
// Under `go test -short` (`make unit`), Start, Shared.Get and the Start*
// functions skip the test (SkipShort), so only tests that need no part of
// the environment run; tests that need Terraform or a pinned tool call
// SkipShort themselves.
//
// Set FERRY_TESTENV_TRACE=1 to see how long each process took to start.
package testenv

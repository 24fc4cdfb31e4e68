// Package benchfleet measures ferry at the scale of a fleet (make bench-fleet, not run in CI): N
// environments and Applications on one kube-apiserver and one Argo CD, the API requests of one
// customer's apply at each N, and the latency of fleet status (docs/performance.md).
package benchfleet

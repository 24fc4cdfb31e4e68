// Package fleet rolls one bundle out to many customer environments and reports where a bundle is
// across them (docs/fleet.md).
//
// What a rollout has done is read from the live Applications, never from a state file: a target is
// done when its Application is synced to the bundle's digest and healthy. A rollout applies each
// target through an [Executor] (terraform, sync, command or hcp-terraform), in waves, N at a time,
// defers targets whose deployment window is closed until the window engine's next-open time, and
// halts when a wave's failure rate passes the failure budget.
package fleet

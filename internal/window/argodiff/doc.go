// Package argodiff checks package window against Argo CD's own sync-window code. It is a module
// of its own so that ferry's module never depends on Argo CD; it holds only tests.
package argodiff

package fleet

import (
	"testing"

	"github.com/ferry-dev/terraform-provider-ferry/internal/testenv"
)

// TestMain stops the test environments the tests started and fails on a process left running.
func TestMain(m *testing.M) { testenv.Main(m) }

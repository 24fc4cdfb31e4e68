package bundle

import (
	"testing"

	"github.com/ferry-dev/terraform-provider-ferry/internal/testenv"
)

// TestMain fails the run when a registry started by a test is still alive afterwards.
func TestMain(m *testing.M) { testenv.Main(m) }

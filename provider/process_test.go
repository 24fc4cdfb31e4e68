package provider

import (
	"os"
	"runtime/debug"
	"testing"
)

// TestTuneProcess: loggers off only when no TF_LOG* variable asks for logs; GOGC only when unset.
func TestTuneProcess(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	unsetAll := func() {
		for _, k := range append([]string{"TF_LOG", "TF_LOG_CORE", "GOGC"}, quietLoggers...) {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}

	unsetAll()
	TuneProcess()
	for _, k := range []string{"TF_LOG_SDK", "TF_LOG_SDK_FRAMEWORK", "TF_LOG_SDK_PROTO", "TF_LOG_PROVIDER"} {
		if v := os.Getenv(k); v != "OFF" {
			t.Errorf("without TF_LOG*: %s=%q, want OFF", k, v)
		}
	}
	if got := debug.SetGCPercent(100); got != 400 {
		t.Errorf("GOGC unset: GC percent %d, want 400", got)
	}

	unsetAll()
	t.Setenv("TF_LOG", "debug")
	t.Setenv("GOGC", "100")
	TuneProcess()
	for _, k := range quietLoggers {
		if v, ok := os.LookupEnv(k); ok {
			t.Errorf("with TF_LOG=debug: %s=%q, want unset (logs as usual)", k, v)
		}
	}
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GOGC set: GC percent changed to %d", got)
	}
}

package provider

import (
	"os"
	"runtime/debug"
	"strings"
)

// TuneProcess trades memory for CPU in a provider process where Terraform cannot see the
// difference. A plan calls the provider several times per resource, and with hundreds of
// applications the per-call work dominates (docs/performance.md). The provider binary calls it
// first; so do the benchmark's floor providers, which must run under the same settings.
//   - Without any TF_LOG* variable Terraform discards every provider log line, yet reads and
//     parses each one from the plugin's stderr, so the SDK and provider loggers are turned off
//     instead of formatting trace lines for nothing. Set TF_LOG (or TF_LOG_PROVIDER, TF_LOG_SDK_*)
//     and they log as usual.
//   - Unless GOGC is set, the garbage collector runs at a quarter of the default frequency: a
//     plan's live heap is a few MiB.
func TuneProcess() {
	logging := false
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "TF_LOG") {
			logging = true
			break
		}
	}
	if !logging {
		// The subsystems too: a subsystem without its own level formats every trace line (fields
		// copied, masks applied) before the root's sink drops it.
		for _, k := range quietLoggers {
			os.Setenv(k, "OFF")
		}
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
}

// quietLoggers are the logger levels TuneProcess turns off: the SDK's root logger, the framework's
// and terraform-plugin-go's subsystems, and the provider's own logger.
var quietLoggers = []string{"TF_LOG_SDK", "TF_LOG_SDK_FRAMEWORK", "TF_LOG_SDK_PROTO", "TF_LOG_PROVIDER"}

package provider

import (
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"

	"github.com/ferry-dev/terraform-provider-ferry/internal/testenv"
)

const fnWindows = `[
  { kind = "allow", schedule = "0 2 * * *", duration = "2h", time_zone = "UTC" },
  { kind = "deny", schedule = "0 0 24 12 *", duration = "48h", description = "christmas" },
]`

func TestWindowStatusFunction(t *testing.T) {
	testenv.SkipShort(t, "Terraform")
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testProviderFactories,
		Steps: []resource.TestStep{{
			Config: `
locals {
  windows = ` + fnWindows + `
}
output "closed" {
  value = provider::ferry::window_status(local.windows, "2026-11-26T01:00:00Z")
}
output "open" {
  value = provider::ferry::window_status(local.windows, "2026-11-26T03:30:00Z")
}
output "denied" {
  value = provider::ferry::window_status(local.windows, "2026-12-24T02:30:00Z")
}
output "none" {
  value = provider::ferry::window_status([], "2026-11-26T01:00:00Z")
}
# Usable in check blocks and preconditions.
check "window" {
  assert {
    condition     = !provider::ferry::window_status(local.windows, "2026-11-26T01:00:00Z").open
    error_message = "expected closed"
  }
}
resource "terraform_data" "gate" {
  lifecycle {
    precondition {
      condition     = provider::ferry::window_status(local.windows, "2026-11-26T03:00:00Z").open
      error_message = "deployment window closed"
    }
  }
}
`,
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownOutputValue("closed", knownvalue.ObjectExact(map[string]knownvalue.Check{
					"open":       knownvalue.Bool(false),
					"reason":     knownvalue.StringRegexp(regexp.MustCompile(`allow`)),
					"next_open":  knownvalue.StringExact("2026-11-26T02:00:00Z"),
					"next_close": knownvalue.StringExact("2026-11-26T04:00:00Z"),
				})),
				statecheck.ExpectKnownOutputValue("open", knownvalue.ObjectExact(map[string]knownvalue.Check{
					"open":       knownvalue.Bool(true),
					"reason":     knownvalue.StringRegexp(regexp.MustCompile(`allow`)),
					"next_open":  knownvalue.StringExact("2026-11-27T02:00:00Z"),
					"next_close": knownvalue.StringExact("2026-11-26T04:00:00Z"),
				})),
				statecheck.ExpectKnownOutputValue("denied", knownvalue.ObjectPartial(map[string]knownvalue.Check{
					"open":      knownvalue.Bool(false),
					"reason":    knownvalue.StringRegexp(regexp.MustCompile(`deny.*christmas`)),
					"next_open": knownvalue.StringExact("2026-12-26T02:00:00Z"),
				})),
				statecheck.ExpectKnownOutputValue("none", knownvalue.ObjectExact(map[string]knownvalue.Check{
					"open":       knownvalue.Bool(true),
					"reason":     knownvalue.StringExact("no deployment windows"),
					"next_open":  knownvalue.Null(),
					"next_close": knownvalue.Null(),
				})),
			},
		}},
	})
}

func TestWindowStatusFunctionErrors(t *testing.T) {
	testenv.SkipShort(t, "Terraform")
	tests := []struct{ name, call, want string }{
		{"bad timestamp", `provider::ferry::window_status([], "yesterday")`, `timestamp "yesterday" is not RFC 3339, e.g. 2026-11-26T10:00:00Z`},
		{"unknown zone", `provider::ferry::window_status([{ kind = "allow", schedule = "0 2 * * *", duration = "1h", time_zone = "Mars/Olympus" }], "2026-11-26T01:00:00Z")`, `windows[0].time_zone: unknown time zone "Mars/Olympus"`},
		{"unknown attribute", `provider::ferry::window_status([{ kind = "allow", schedule = "0 2 * * *", duration = "1h", zone = "UTC" }], "2026-11-26T01:00:00Z")`, `windows[0] has an unknown attribute "zone"; use kind, schedule, duration, time_zone, manual_sync, description`},
		{"not a list", `provider::ferry::window_status("allow", "2026-11-26T01:00:00Z")`, `windows must be a list of objects`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resource.UnitTest(t, resource.TestCase{
				ProtoV6ProviderFactories: testProviderFactories,
				Steps:                    []resource.TestStep{{Config: `output "x" { value = ` + tt.call + ` }`, ExpectError: exactError(tt.want)}},
			})
		})
	}
}

package window_test

import (
	"fmt"
	"time"

	"github.com/ferry-dev/terraform-provider-ferry/internal/window"
)

func label(i int) string { return fmt.Sprintf("deployment_window[%d]", i) }

func ExampleEvaluate() {
	ws, err := window.Parse([]window.Spec{
		{Kind: "allow", Schedule: "0 8 * * 1-5", Duration: "10h", TimeZone: "Europe/Berlin"},
		{Kind: "deny", Schedule: "0 0 24 12 *", Duration: "192h", TimeZone: "Europe/Berlin", Description: "December freeze"},
	}, label)
	if err != nil {
		panic(err)
	}
	st := window.Evaluate(ws, time.Date(2026, 12, 28, 12, 0, 0, 0, time.UTC), false)
	fmt.Println(st.Open)
	fmt.Println(st.Reason)
	fmt.Println(st.Window)
	fmt.Println(st.NextOpen.UTC(), st.NextClose.UTC())
	// Output:
	// false
	// deny window deployment_window[1] ("December freeze") is active until 2026-12-31T23:00:00Z
	// deployment_window[1]
	// 2027-01-01 07:00:00 +0000 UTC 2027-01-01 17:00:00 +0000 UTC
}

func ExampleParse() {
	_, err := window.Parse([]window.Spec{
		{Kind: "allow", Schedule: "0 8 * * 1-5", Duration: "1d", TimeZone: "Europe/Berln"},
	}, label)
	fmt.Println(err)
	// Output:
	// deployment_window[0].duration: cannot parse duration '1d': time: unknown unit "d" in duration "1d" (there is no "d" unit: write days as hours, e.g. "24h")
	// deployment_window[0].time_zone: unknown time zone "Europe/Berln"
}

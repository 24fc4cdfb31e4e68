package window

import (
	"testing"
	"time"
)

// realisticSpecs are ten windows of a busy environment.
var realisticSpecs = []Spec{
	{Kind: "allow", Schedule: "0 8 * * 1-5", Duration: "10h", TimeZone: "Europe/Berlin", Description: "Berlin office hours"},
	{Kind: "allow", Schedule: "0 9 * * 1-5", Duration: "8h", TimeZone: "America/New_York", Description: "New York office hours"},
	{Kind: "allow", Schedule: "30 9 * * 1-5", Duration: "8h", TimeZone: "Asia/Kolkata", Description: "Bangalore office hours"},
	{Kind: "allow", Schedule: "0 2 * * 0", Duration: "4h", TimeZone: "UTC", Description: "Sunday maintenance"},
	{Kind: "deny", Schedule: "0 15 * * 5", Duration: "65h", TimeZone: "Europe/Berlin", Description: "no Friday afternoon deploys"},
	{Kind: "deny", Schedule: "0 0 24 12 *", Duration: "192h", TimeZone: "Europe/Berlin", Description: "December freeze"},
	{Kind: "deny", Schedule: "0 0 1 1 *", Duration: "24h", ManualSync: true, Description: "New Year"},
	{Kind: "deny", Schedule: "*/30 12 * * 1-5", Duration: "30m", TimeZone: "Europe/Berlin", ManualSync: true, Description: "lunch"},
	{Kind: "deny", Schedule: "0 0 25-31 3,10 0", Duration: "4h", TimeZone: "Europe/Berlin", Description: "DST Sundays"},
	{Kind: "allow", Schedule: "0 6 1 * *", Duration: "2h", TimeZone: "Australia/Lord_Howe", ManualSync: true, Description: "monthly window"},
}

func BenchmarkEvaluate(b *testing.B) {
	ws := mustParse(b, realisticSpecs...)
	start := at("2026-03-02T00:00:00Z")
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		// Walk through four weeks in 17-minute steps, open and closed, manual and automated.
		Evaluate(ws, start.Add(time.Duration(i%2372)*17*time.Minute), i%2 == 0)
	}
}

func BenchmarkEvaluateFrozen(b *testing.B) {
	ws := mustParse(b, append([]Spec{{Kind: "deny", Schedule: "* * * * *", Duration: "1h", Description: "frozen"}}, realisticSpecs...)...)
	now := at("2026-03-02T10:00:00Z")
	for b.Loop() {
		Evaluate(ws, now, false)
	}
}

func BenchmarkParse(b *testing.B) {
	for b.Loop() {
		if _, err := Parse(realisticSpecs, label); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEvaluateSearchLimit(b *testing.B) {
	ws := mustParse(b,
		Spec{Kind: "deny", Schedule: "*/2 * * * *", Duration: "1m"},
		Spec{Kind: "deny", Schedule: "1-59/2 * * * *", Duration: "1m"},
	)
	now := at("2026-03-02T10:00:00Z")
	for b.Loop() {
		Evaluate(ws, now, false)
	}
}

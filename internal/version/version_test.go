package version

import "testing"

func TestGet(t *testing.T) {
	if got := Get(); got != "dev" {
		t.Errorf("Get() of an unstamped build = %q, want dev", got)
	}
	if got := UserAgent("ferry"); got != "ferry/dev" {
		t.Errorf(`UserAgent("ferry") = %q, want ferry/dev`, got)
	}
	old := Version
	t.Cleanup(func() { Version = old })
	Version = "1.2.3"
	if got := UserAgent("terraform-provider-ferry"); got != "terraform-provider-ferry/1.2.3" {
		t.Errorf("UserAgent of a release build = %q, want terraform-provider-ferry/1.2.3", got)
	}
}

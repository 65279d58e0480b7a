package utf8cut

import "testing"

func TestCut(t *testing.T) {
	cases := []struct {
		s    string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exact", 5, "exact"},
		{"longer", 3, "lon…"},
		{"aé", 2, "a…"}, // é is two bytes: never half of it
		{"éé", 3, "é…"},
		{"x", 0, "…"},
	}
	for _, tc := range cases {
		if got := Cut(tc.s, tc.n); got != tc.want {
			t.Errorf("Cut(%q, %d) = %q, want %q", tc.s, tc.n, got, tc.want)
		}
	}
	if got := Prefix("aé", 2); got != "a" {
		t.Errorf("Prefix = %q, want a", got)
	}
	if got := Prefix("abc", 9); got != "abc" {
		t.Errorf("Prefix of a short string = %q", got)
	}
}

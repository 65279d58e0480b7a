package glob

import (
	"strings"
	"testing"
)

func TestMatch(t *testing.T) {
	cases := []struct {
		pattern, name string
		want          bool
	}{
		{"/", "/", true},
		{"/", "/a", false},
		{"/team-*", "/team-a", true},
		{"/team-*", "/team-", true},
		{"/team-*", "/team-a/b", true},
		{"/team-*", "/teams", false},
		{"*", "", true},
		{"a?c", "abc", true},
		{"a?c", "aéc", true},
		{"a?c", "ac", false},
		{"*b*b*", "abcbd", true},
		{"*b*b*", "abcd", false},
		{`a\*`, "a*", true},
		{`a\*`, "ab", false},
		{Escape("x*?\\"), "x*?\\", true},
		{Escape("x*"), "xy", false},
		{strings.Repeat("*a", 30) + "b", strings.Repeat("a", 200), false},
	}
	for _, tc := range cases {
		if got := Match(tc.pattern, tc.name); got != tc.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tc.pattern, tc.name, got, tc.want)
		}
	}
}

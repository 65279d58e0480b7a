// Package utf8cut shortens client-chosen strings (event, room and
// namespace names, arguments) for logs and replies without splitting a
// UTF-8 sequence.
package utf8cut

import "unicode/utf8"

// Prefix returns the longest prefix of s of at most n bytes that does not
// end inside a UTF-8 sequence.
func Prefix(s string, n int) string {
	if n >= len(s) {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Cut returns s when it is at most n bytes long, and otherwise its Prefix
// of n bytes followed by "…", so a reader sees that it was cut.
func Cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return Prefix(s, n) + "…"
}

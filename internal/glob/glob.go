// Package glob matches room, namespace and event names against the
// patterns of the Caddyfile: "*" any run of characters (slashes included),
// "?" one character, a backslash makes the next one literal.
package glob

import (
	"strings"
	"unicode/utf8"
)

// Match reports whether name matches pattern, where "*" stands for any
// run of characters (slashes included), "?" for one character, and a
// backslash makes the next character literal. Room and namespace names are
// not paths, so path.Match's "* stops at /" rule would only surprise.
func Match(pattern, name string) bool {
	// Iterative matcher with one backtrack point: linear in practice and
	// without recursion, so a hostile name cannot blow the stack.
	p, n := 0, 0
	starP, starN := -1, 0
	for n < len(name) {
		if p < len(pattern) {
			switch c := pattern[p]; c {
			case '*':
				starP, starN = p, n
				p++
				continue
			case '?':
				_, size := utf8.DecodeRuneInString(name[n:])
				p++
				n += size
				continue
			case '\\':
				if p+1 < len(pattern) && pattern[p+1] == name[n] {
					p += 2
					n++
					continue
				}
			default:
				if c == name[n] {
					p++
					n++
					continue
				}
			}
		}
		if starP < 0 {
			return false
		}
		starN++
		p, n = starP+1, starN
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// Escape makes s match itself literally in Match.
func Escape(s string) string {
	if !strings.ContainsAny(s, `*?\`) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if r == '*' || r == '?' || r == '\\' {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

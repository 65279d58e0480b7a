package parser

import (
	"encoding/json"
	"errors"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// maxJSONDepth is the deepest nesting of arrays and objects accepted in a
// payload, the same limit encoding/json applies.
const maxJSONDepth = 10000

// parseJSON decodes exactly one JSON value (with optional surrounding
// whitespace) into the values encoding/json produces for an `any` target
// with UseNumber: map[string]any, []any, string, json.Number, bool, nil.
// Invalid UTF-8 and lone surrogates become U+FFFD as in encoding/json.
//
// It exists because every incoming event goes through it: a json.Decoder
// costs about ten allocations of its own per packet before it produces a
// value. FuzzJSON checks that both agree.
func parseJSON(s []byte) (any, error) {
	p := jsonParser{s: s}
	p.skipSpace()
	v, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.i != len(p.s) {
		return nil, p.errorf("unexpected data after the value")
	}
	return v, nil
}

type jsonParser struct {
	s []byte
	i int
}

func (p *jsonParser) errorf(msg string) error {
	return errors.New(msg + " at offset " + strconv.Itoa(p.i))
}

func (p *jsonParser) skipSpace() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *jsonParser) value(depth int) (any, error) {
	if p.i >= len(p.s) {
		return nil, p.errorf("unexpected end of input")
	}
	switch c := p.s[p.i]; c {
	case '[':
		return p.array(depth + 1)
	case '{':
		return p.object(depth + 1)
	case '"':
		str, err := p.str()
		if err != nil {
			return nil, err
		}
		return str, nil
	case 't':
		return true, p.literal("true")
	case 'f':
		return false, p.literal("false")
	case 'n':
		return nil, p.literal("null")
	default:
		if c == '-' || isDigit(c) {
			return p.number()
		}
	}
	return nil, p.errorf("unexpected character " + strconv.QuoteRune(rune(p.s[p.i])))
}

func (p *jsonParser) literal(word string) error {
	if len(p.s)-p.i < len(word) || string(p.s[p.i:p.i+len(word)]) != word {
		return p.errorf("invalid literal")
	}
	p.i += len(word)
	return nil
}

func (p *jsonParser) number() (any, error) {
	start := p.i
	for p.i < len(p.s) {
		c := p.s[p.i]
		if !isDigit(c) && c != '-' && c != '+' && c != '.' && c != 'e' && c != 'E' {
			break
		}
		p.i++
	}
	num := string(p.s[start:p.i])
	if !validNumber(num) {
		p.i = start
		return nil, p.errorf("invalid number")
	}
	return json.Number(num), nil
}

func (p *jsonParser) array(depth int) (any, error) {
	if depth > maxJSONDepth {
		return nil, p.errorf("nested too deeply")
	}
	p.i++ // [
	p.skipSpace()
	if p.i < len(p.s) && p.s[p.i] == ']' {
		p.i++
		return []any{}, nil
	}
	a := make([]any, 0, 4)
	for {
		p.skipSpace()
		v, err := p.value(depth)
		if err != nil {
			return nil, err
		}
		a = append(a, v)
		p.skipSpace()
		if p.i >= len(p.s) {
			return nil, p.errorf("unexpected end of input in array")
		}
		switch p.s[p.i] {
		case ',':
			p.i++
		case ']':
			p.i++
			return a, nil
		default:
			return nil, p.errorf("expected , or ] in array")
		}
	}
}

func (p *jsonParser) object(depth int) (any, error) {
	if depth > maxJSONDepth {
		return nil, p.errorf("nested too deeply")
	}
	p.i++ // {
	m := make(map[string]any)
	p.skipSpace()
	if p.i < len(p.s) && p.s[p.i] == '}' {
		p.i++
		return m, nil
	}
	for {
		p.skipSpace()
		if p.i >= len(p.s) || p.s[p.i] != '"' {
			return nil, p.errorf("expected a string key in object")
		}
		k, err := p.str()
		if err != nil {
			return nil, err
		}
		p.skipSpace()
		if p.i >= len(p.s) || p.s[p.i] != ':' {
			return nil, p.errorf("expected : in object")
		}
		p.i++
		p.skipSpace()
		v, err := p.value(depth)
		if err != nil {
			return nil, err
		}
		m[k] = v
		p.skipSpace()
		if p.i >= len(p.s) {
			return nil, p.errorf("unexpected end of input in object")
		}
		switch p.s[p.i] {
		case ',':
			p.i++
		case '}':
			p.i++
			return m, nil
		default:
			return nil, p.errorf("expected , or } in object")
		}
	}
}

// str reads a string starting at the opening quote. Strings without
// escapes or invalid UTF-8 are copied in one piece.
func (p *jsonParser) str() (string, error) {
	start := p.i + 1
	j := start
	for j < len(p.s) {
		c := p.s[j]
		if c == '"' {
			p.i = j + 1
			return string(p.s[start:j]), nil
		}
		if c == '\\' || c < 0x20 {
			break
		}
		if c < utf8.RuneSelf {
			j++
			continue
		}
		r, size := utf8.DecodeRune(p.s[j:])
		if r == utf8.RuneError && size == 1 {
			break
		}
		j += size
	}
	buf := make([]byte, 0, j-start+16)
	buf = append(buf, p.s[start:j]...)
	for j < len(p.s) {
		c := p.s[j]
		switch {
		case c == '"':
			p.i = j + 1
			return string(buf), nil
		case c < 0x20:
			p.i = j
			return "", p.errorf("control character in string")
		case c == '\\':
			if j+1 >= len(p.s) {
				p.i = j
				return "", p.errorf("unexpected end of input in string")
			}
			j++
			switch p.s[j] {
			case '"', '\\', '/':
				buf = append(buf, p.s[j])
			case 'b':
				buf = append(buf, '\b')
			case 'f':
				buf = append(buf, '\f')
			case 'n':
				buf = append(buf, '\n')
			case 'r':
				buf = append(buf, '\r')
			case 't':
				buf = append(buf, '\t')
			case 'u':
				r := hex4(p.s[j+1:])
				if r < 0 {
					p.i = j
					return "", p.errorf("invalid \\u escape")
				}
				j += 4
				if utf16.IsSurrogate(r) {
					// A pair is two escapes; anything else is a lone
					// surrogate, which encoding/json turns into U+FFFD.
					r2 := rune(-1)
					if j+6 < len(p.s) && p.s[j+1] == '\\' && p.s[j+2] == 'u' {
						r2 = hex4(p.s[j+3:])
					}
					if pair := utf16.DecodeRune(r, r2); pair != utf8.RuneError {
						r = pair
						j += 6
					} else {
						r = utf8.RuneError
					}
				}
				buf = utf8.AppendRune(buf, r)
			default:
				p.i = j
				return "", p.errorf("invalid escape")
			}
			j++
		case c < utf8.RuneSelf:
			buf = append(buf, c)
			j++
		default:
			r, size := utf8.DecodeRune(p.s[j:])
			if r == utf8.RuneError && size == 1 {
				buf = append(buf, "\uFFFD"...)
			} else {
				buf = append(buf, p.s[j:j+size]...)
			}
			j += size
		}
	}
	p.i = j
	return "", p.errorf("unterminated string")
}

// hex4 reads four hex digits, or returns -1.
func hex4(b []byte) rune {
	if len(b) < 4 {
		return -1
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case isDigit(c):
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}

package parser

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

// stdJSON decodes s the way the package documents its values: encoding/json
// with UseNumber, exactly one value.
func stdJSON(s []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errTrailing
	}
	return v, nil
}

var errTrailing = errors.New("data after the value")

var jsonSeeds = []string{
	`null`, `true`, `false`, ` 0 `, `-0.5e+10`, `"a"`, `[]`, `{}`, `[1,[2,{"a":[]}]]`,
	`{"a":1,"a":2}`, `"\u00e9\ud83d\ude00\ud800x\udc00\ud800\u0041"`, `"\"\\\/\b\f\n\r\t"`,
	"\"\xff\xed\xa0\x80ok\"", "\"\x01\"", `[1,]`, `{"a"}`, `{"a":}`, `[01]`, `1.`, `"\u12"`,
	`"\x"`, `tru`, `nul`, `[1 2]`, `{"a":1 "b":2}`, `"abc`, `["\ud800\u"]`, `{"_placeholder":true,"num":0}`,
	"\t[\r\n1\n]\t", `[1e400,-1E-400]`, `--1`, `[+1]`, `"\/"`, `[null,true,false,"",{}]`,
}

func TestParseJSONMatchesEncodingJSON(t *testing.T) {
	for _, s := range jsonSeeds {
		compareJSON(t, []byte(s))
	}
	deep := strings.Repeat("[", maxJSONDepth) + strings.Repeat("]", maxJSONDepth)
	compareJSON(t, []byte(deep))
	tooDeep := "[" + deep + "]"
	if _, err := parseJSON([]byte(tooDeep)); err == nil {
		t.Fatal("nesting above maxJSONDepth accepted")
	}
}

func compareJSON(t *testing.T, s []byte) {
	t.Helper()
	ours, oerr := parseJSON(s)
	std, serr := stdJSON(s)
	if (oerr == nil) != (serr == nil) {
		t.Fatalf("%q: parseJSON error %v, encoding/json error %v", s, oerr, serr)
	}
	if oerr == nil && !reflect.DeepEqual(ours, std) {
		t.Fatalf("%q: parseJSON = %#v, encoding/json = %#v", s, ours, std)
	}
}

// FuzzJSON checks the hand-written JSON reader against encoding/json.
func FuzzJSON(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, s []byte) {
		compareJSON(t, s)
	})
}

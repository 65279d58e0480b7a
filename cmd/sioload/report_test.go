package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestRatio(t *testing.T) {
	a, b, zero := 200.0, 50.0, 0.0
	tests := []struct {
		name string
		a, b *float64
		want string
	}{
		{"b over a", &a, &b, "0.25x"},
		{"missing b", &a, nil, "n/a"},
		{"zero a", &zero, &b, "n/a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ratio(tt.a, tt.b); got != tt.want {
				t.Errorf("ratio = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestCompareReadsJSONLines(t *testing.T) {
	dir := t.TempDir()
	node := result{Scenario: "connect", Label: "node"}
	node.addTarget("connects/s", 400, "1/s", higherBetter)
	node.add("failed", 0, "", lowerBetter)
	goRes := result{Scenario: "connect", Label: "go", RSSSeries: []float64{50, 51}}
	goRes.addTarget("connects/s", 1000, "1/s", higherBetter)
	var outA, outB bytes.Buffer
	for _, x := range []struct {
		r   result
		buf *bytes.Buffer
	}{{node, &outA}, {goRes, &outB}} {
		b, err := jsonLine(x.r)
		if err != nil {
			t.Fatal(err)
		}
		x.buf.Write(b)
	}
	pa, pb := filepath.Join(dir, "node.jsonl"), filepath.Join(dir, "go.jsonl")
	// A progress line in the file must be skipped.
	os.WriteFile(pa, append([]byte("sioload: progress\n"), outA.Bytes()...), 0o644)
	os.WriteFile(pb, outB.Bytes(), 0o644)

	var out bytes.Buffer
	if err := run([]string{"compare", pa, pb}, &out); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, want := range []string{"*connects/s (1/s)", "400", "1000", "2.50x", "failed", "n/a", "go connect server RSS MiB per second: 50 51"} {
		if !strings.Contains(text, want) {
			t.Errorf("comparison lacks %q:\n%s", want, text)
		}
	}
	// The Go side may be missing entirely (engine not built yet).
	out.Reset()
	if err := run([]string{"compare", pa, filepath.Join(dir, "absent.jsonl")}, &out); err != nil {
		t.Fatalf("missing second file: %v", err)
	}
}

// TestCompareColumns: one column per file, each ratio to the first, and a
// -names list that does not match the files refused.
func TestCompareColumns(t *testing.T) {
	dir := t.TempDir()
	var paths []string
	for i, v := range []float64{10, 5, 20} {
		r := result{Scenario: "connect"}
		r.addTarget("mem per idle conn", v, "KiB", lowerBetter)
		b, err := jsonLine(r)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, strconv.Itoa(i)+".jsonl")
		os.WriteFile(p, b, 0o644)
		paths = append(paths, p)
	}
	var out bytes.Buffer
	if err := run(append([]string{"compare", "-names", "node,caddy,statusquo"}, paths...), &out); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, want := range []string{"caddy/node", "statusquo/node", "0.50x", "2.00x"} {
		if !strings.Contains(text, want) {
			t.Errorf("comparison lacks %q:\n%s", want, text)
		}
	}
	if err := run(append([]string{"compare", "-names", "node,caddy"}, paths...), &out); err == nil {
		t.Error("two names for three files accepted")
	}
}

func TestValidateBoundsLoops(t *testing.T) {
	if err := run([]string{"fanout", "-rate", "-1", "-addr", "127.0.0.1:1"}, &bytes.Buffer{}); err == nil {
		t.Error("negative rate accepted")
	}
	if err := run([]string{"connect", "-n", "1000000", "-addr", "127.0.0.1:1"}, &bytes.Buffer{}); err == nil {
		t.Error("a million clients accepted")
	}
	if err := run([]string{"connect", "-addr", "10.1.2.3:80"}, &bytes.Buffer{}); err == nil ||
		!strings.Contains(err.Error(), "loopback") {
		t.Errorf("non-loopback target: %v", err)
	}
	if err := run([]string{"nosuch"}, &bytes.Buffer{}); err == nil {
		t.Error("unknown scenario accepted")
	}
}

func TestMedian(t *testing.T) {
	tests := []struct {
		in   []float64
		want float64
	}{
		{[]float64{5}, 5},
		{[]float64{9, 1, 5}, 5},
		{[]float64{4, 1, 3, 2}, 2.5},
	}
	for _, tt := range tests {
		if got := median(tt.in); got == nil || *got != tt.want {
			t.Errorf("median(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
	if median(nil) != nil {
		t.Error("median of nothing is not nil")
	}
	in := []float64{3, 1, 2}
	median(in)
	if in[0] != 3 {
		t.Error("median sorted its input")
	}
}

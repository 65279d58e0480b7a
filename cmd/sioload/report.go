package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Directions of a metric, so the comparison can tell a win from a loss.
const (
	higherBetter = "higher"
	lowerBetter  = "lower"
)

// metric is one measured number.
type metric struct {
	Name   string  `json:"name"`
	Value  float64 `json:"value"`
	Unit   string  `json:"unit,omitempty"`
	Better string  `json:"better,omitempty"`
	// Target marks the numbers the issue sets ratio targets for.
	Target bool `json:"target,omitempty"`
}

// sweepStep is one publish rate of a fan-out sweep.
type sweepStep struct {
	Rate          float64 `json:"rate"`
	Offered       float64 `json:"offered_per_s"`
	Deliveries    float64 `json:"deliveries_per_s"`
	LossPct       float64 `json:"loss_pct"`
	P50Ms         float64 `json:"p50_ms"`
	P99Ms         float64 `json:"p99_ms"`
	ServerCPUPct  float64 `json:"server_cpu_pct"`
	ToolCPUPct    float64 `json:"tool_cpu_pct"`
	Sustained     bool    `json:"sustained"`
	ServerRSSMiB  float64 `json:"server_rss_mib"`
	CPUPerDeliver float64 `json:"server_cpu_us_per_delivery"`
}

// result is the outcome of one scenario run, printed as a table or as one
// JSON line that `sioload compare` reads back.
type result struct {
	Scenario string         `json:"scenario"`
	Label    string         `json:"label,omitempty"`
	Params   map[string]any `json:"params"`
	Metrics  []metric       `json:"metrics"`
	Steps    []sweepStep    `json:"steps,omitempty"`
	// RSSSeries is the server RSS (MiB) sampled once a second (overload).
	RSSSeries []float64 `json:"rss_mib_series,omitempty"`
	Notes     []string  `json:"notes,omitempty"`
}

func (r *result) add(name string, v float64, unit, better string) {
	r.Metrics = append(r.Metrics, metric{Name: name, Value: v, Unit: unit, Better: better})
}

func (r *result) addTarget(name string, v float64, unit, better string) {
	r.Metrics = append(r.Metrics, metric{Name: name, Value: v, Unit: unit, Better: better, Target: true})
}

func (r *result) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func mib(kib int64) float64 { return float64(kib) / 1024 }

// fmtNum prints a number compactly with 3 significant decimals at most.
func fmtNum(v float64) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return "n/a"
	case v == math.Trunc(v) && math.Abs(v) < 1e15:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case math.Abs(v) >= 100:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case math.Abs(v) >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'f', 3, 64)
	}
}

// writeTable prints a result for people.
func writeTable(w io.Writer, r result) {
	title := r.Scenario
	if r.Label != "" {
		title += " (" + r.Label + ")"
	}
	fmt.Fprintf(w, "== %s ==\n", title)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, m := range r.Metrics {
		mark := ""
		if m.Target {
			mark = "*"
		}
		fmt.Fprintf(tw, "%s%s\t%s\t%s\n", mark, m.Name, fmtNum(m.Value), m.Unit)
	}
	tw.Flush()
	if len(r.Steps) > 0 {
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "rate/s\toffered/s\tdelivered/s\tloss%\tp50 ms\tp99 ms\tsrv cpu%\ttool cpu%\tsustained\t")
		for _, s := range r.Steps {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%v\t\n", fmtNum(s.Rate), fmtNum(s.Offered),
				fmtNum(s.Deliveries), fmtNum(s.LossPct), fmtNum(s.P50Ms), fmtNum(s.P99Ms),
				fmtNum(s.ServerCPUPct), fmtNum(s.ToolCPUPct), s.Sustained)
		}
		tw.Flush()
	}
	if len(r.RSSSeries) > 0 {
		fmt.Fprintf(w, "server RSS MiB per second: %s\n", joinNums(r.RSSSeries))
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
}

func joinNums(vs []float64) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strings.Join(parts, " ")
}

// readResults reads JSON lines written by --json; blank lines are skipped.
func readResults(path string) ([]result, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening results: %w", err)
	}
	defer f.Close()
	var out []result
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 16<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] != '{' {
			continue
		}
		var r result
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			return nil, fmt.Errorf("parsing results %s: %w", path, err)
		}
		out = append(out, r)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading results %s: %w", path, err)
	}
	return out, nil
}

// writeComparison prints scenario | metric | one column per server | the
// ratio of each other server to the first | want, for every metric of any
// side, in the order they first appear. A metric measured several times
// (compare.sh REPEAT) shows its median, which resists the odd run spoiled by
// other work on the machine. Target metrics are starred; "want" says which
// direction is good.
func writeComparison(w io.Writer, names []string, sides [][]result) {
	type key struct{ scenario, metric string }
	type row struct {
		key
		unit, better string
		target       bool
		vals         [][]float64
	}
	var rows []*row
	index := map[key]*row{}
	runs := 1
	for side, rs := range sides {
		for _, r := range rs {
			for _, m := range r.Metrics {
				k := key{r.Scenario, m.Name}
				rw := index[k]
				if rw == nil {
					rw = &row{key: k, unit: m.Unit, better: m.Better, target: m.Target, vals: make([][]float64, len(sides))}
					index[k] = rw
					rows = append(rows, rw)
				}
				rw.vals[side] = append(rw.vals[side], m.Value)
				runs = max(runs, len(rw.vals[side]))
			}
		}
	}

	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	head := "scenario\tmetric"
	for _, n := range names {
		head += "\t" + n
	}
	for _, n := range names[1:] {
		head += "\t" + n + "/" + names[0]
	}
	fmt.Fprintln(tw, head+"\twant")
	for _, rw := range rows {
		name := rw.metric
		if rw.unit != "" {
			name += " (" + rw.unit + ")"
		}
		if rw.target {
			name = "*" + name
		}
		line := rw.scenario + "\t" + name
		meds := make([]*float64, len(names))
		for i := range names {
			meds[i] = median(rw.vals[i])
			line += "\t" + optNum(meds[i])
		}
		for i := 1; i < len(names); i++ {
			line += "\t" + ratio(meds[0], meds[i])
		}
		fmt.Fprintln(tw, line+"\t"+rw.better)
	}
	tw.Flush()
	if runs > 1 {
		fmt.Fprintf(w, "values are medians of up to %d runs\n", runs)
	}
	for i, rs := range sides {
		for _, r := range rs {
			if len(r.RSSSeries) > 0 {
				fmt.Fprintf(w, "%s %s server RSS MiB per second: %s\n", names[i], r.Scenario, joinNums(r.RSSSeries))
			}
			for _, n := range r.Notes {
				fmt.Fprintf(w, "%s %s note: %s\n", names[i], r.Scenario, n)
			}
		}
	}
}

// median returns the median of vs (mean of the middle two for an even
// count), or nil for none.
func median(vs []float64) *float64 {
	if len(vs) == 0 {
		return nil
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return &m
}

func optNum(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmtNum(*v)
}

// ratio returns b/a, or "n/a" when either is missing or a is zero.
func ratio(a, b *float64) string {
	if a == nil || b == nil || *a == 0 {
		return "n/a"
	}
	return strconv.FormatFloat(*b / *a, 'f', 2, 64) + "x"
}

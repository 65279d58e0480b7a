package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// clockTicks is the kernel's USER_HZ used by /proc/<pid>/stat. It is 100 on
// every mainstream Linux build; main asks getconf once to be sure.
var clockTicks int64 = 100

// initClockTicks reads CLK_TCK from getconf and keeps 100 when that fails.
func initClockTicks() {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err != nil {
		return
	}
	if v, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64); err == nil && v > 0 {
		clockTicks = v
	}
}

// procSample is what the tool reads about a process at one instant.
type procSample struct {
	At     time.Time
	RSSKiB int64         // VmRSS
	CPU    time.Duration // utime + stime
}

// sampleProc reads RSS and CPU time of pid ("self" for this process).
func sampleProc(pid string) (procSample, error) {
	s := procSample{At: time.Now()}
	status, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return s, fmt.Errorf("reading process status: %w", err)
	}
	if s.RSSKiB, err = parseVmRSS(status); err != nil {
		return s, err
	}
	stat, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return s, fmt.Errorf("reading process stat: %w", err)
	}
	ticks, err := parseStatCPU(stat)
	if err != nil {
		return s, err
	}
	s.CPU = time.Duration(ticks) * time.Second / time.Duration(clockTicks)
	return s, nil
}

// parseVmRSS returns the VmRSS value (KiB) from /proc/<pid>/status.
func parseVmRSS(status []byte) (int64, error) {
	for _, line := range bytes.Split(status, []byte{'\n'}) {
		rest, ok := bytes.CutPrefix(line, []byte("VmRSS:"))
		if !ok {
			continue
		}
		fields := strings.Fields(string(rest))
		if len(fields) < 1 {
			break
		}
		v, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parsing VmRSS: %w", err)
		}
		return v, nil
	}
	return 0, fmt.Errorf("parsing process status: no VmRSS line")
}

// parseStatCPU returns utime+stime (clock ticks) from /proc/<pid>/stat. The
// command name in parentheses may hold spaces, so fields count from the last
// ')': state is field 3, utime 14, stime 15.
func parseStatCPU(stat []byte) (int64, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("parsing process stat: no command name")
	}
	fields := strings.Fields(string(stat[i+1:]))
	// fields[0] is field 3 (state), so field k is fields[k-3].
	if len(fields) < 13 {
		return 0, fmt.Errorf("parsing process stat: %d fields", len(fields))
	}
	utime, err := strconv.ParseInt(fields[14-3], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parsing utime: %w", err)
	}
	stime, err := strconv.ParseInt(fields[15-3], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parsing stime: %w", err)
	}
	return utime + stime, nil
}

// watcher samples the server process, when one was named, and this process.
// A zero pid means no server metrics, which keeps the tool usable against a
// server on another machine's loopback namespace (a container).
type watcher struct {
	pid string
	// pid2 is a second server (the other node of a cluster): its CPU and
	// RSS are added to the first's.
	pid2 string
}

// server samples the server; ok is false when no pid was given or it is gone.
func (w watcher) server() (procSample, bool) {
	if w.pid == "" {
		return procSample{}, false
	}
	s, err := sampleProc(w.pid)
	if err != nil {
		return s, false
	}
	if w.pid2 != "" {
		s2, err := sampleProc(w.pid2)
		if err != nil {
			return s, false
		}
		s.CPU += s2.CPU
		s.RSSKiB += s2.RSSKiB
	}
	return s, true
}

// self samples the load tool itself, to tell when it is the bottleneck.
func (w watcher) self() procSample {
	s, _ := sampleProc("self")
	return s
}

// loadAvg returns the 1-minute load average from /proc/loadavg, or "?".
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

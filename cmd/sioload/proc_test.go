package main

import (
	"os"
	"strconv"
	"testing"
)

func TestParseStatCPU(t *testing.T) {
	// The command name holds spaces and a parenthesis, as a process may name itself.
	stat := "1234 (node (bench) x) S 1 1234 1234 0 -1 4194560 5000 0 0 0 250 75 0 0 20 0 11 0 100 1000000 5000 18446744073709551615\n"
	got, err := parseStatCPU([]byte(stat))
	if err != nil {
		t.Fatal(err)
	}
	if got != 325 {
		t.Errorf("parseStatCPU = %d, want 325 (250 utime + 75 stime)", got)
	}
	if _, err := parseStatCPU([]byte("1234 (x) S 1 2")); err == nil {
		t.Error("short stat line accepted")
	}
}

func TestParseVmRSS(t *testing.T) {
	status := "Name:\tnode\nVmPeak:\t 1000 kB\nVmRSS:\t   54812 kB\nRssAnon:\t 30000 kB\n"
	got, err := parseVmRSS([]byte(status))
	if err != nil {
		t.Fatal(err)
	}
	if got != 54812 {
		t.Errorf("parseVmRSS = %d, want 54812", got)
	}
	if _, err := parseVmRSS([]byte("Name:\tx\n")); err == nil {
		t.Error("status without VmRSS accepted")
	}
}

func TestSampleSelf(t *testing.T) {
	s, err := sampleProc(strconv.Itoa(os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	if s.RSSKiB <= 0 {
		t.Errorf("RSS = %d KiB", s.RSSKiB)
	}
	if _, ok := (watcher{}).server(); ok {
		t.Error("watcher without pid reports a server")
	}
	// Two pids (a proxy and its backend) are summed.
	self := strconv.Itoa(os.Getpid())
	two, ok := watcher{pids: []string{self, self}}.server()
	if !ok || two.RSSKiB < 2*s.RSSKiB*9/10 {
		t.Errorf("two pids: RSS %d KiB, want about twice %d (ok %v)", two.RSSKiB, s.RSSKiB, ok)
	}
	if _, ok := (watcher{pids: []string{self, "999999999"}}).server(); ok {
		t.Error("a vanished second process still reports a server")
	}
}

package testkit

import (
	"fmt"
	"net/http"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// Process is a program a live test started (Caddy, a backend, make): its
// output goes to Log, and the test's cleanup stops it if the test did not.
type Process struct {
	Name string
	Cmd  *exec.Cmd
	Log  *SyncBuffer
	// ExitTimeout is how long the process may take to exit after SIGTERM
	// before it is killed and the test fails.
	ExitTimeout time.Duration

	done chan struct{} // closed once the process is reaped
	err  error         // cmd.Wait's result, valid after done
}

// StartProcess starts argv in dir with env (exactly: nothing of the test's
// own environment is added) and reaps it in the background; t.Cleanup
// stops it with Stop.
func StartProcess(t testing.TB, name, dir string, env []string, argv ...string) *Process {
	t.Helper()
	p := &Process{Name: name, Log: &SyncBuffer{}, ExitTimeout: 10 * time.Second, done: make(chan struct{})}
	p.Cmd = exec.Command(argv[0], argv[1:]...)
	p.Cmd.Dir = dir
	p.Cmd.Env = env
	p.Cmd.Stdout = p.Log
	p.Cmd.Stderr = p.Log
	p.Cmd.WaitDelay = 2 * time.Second
	if err := p.Cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		p.err = p.Cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { p.Stop(t) })
	return p
}

// Done is closed once the process has exited and been reaped.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err is the process's exit error; valid once Done is closed.
func (p *Process) Err() error { return p.err }

// Stop ends the process if it still runs: SIGTERM, then, after
// ExitTimeout, a kill and a test error. It logs how long the exit took.
func (p *Process) Stop(t testing.TB) {
	select {
	case <-p.done:
		return
	default:
	}
	start := time.Now()
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		t.Logf("%s exited %v after SIGTERM", p.Name, time.Since(start).Round(time.Millisecond))
		return
	case <-time.After(p.ExitTimeout):
	}
	t.Errorf("%s did not exit %v after SIGTERM; killing it", p.Name, p.ExitTimeout)
	_ = p.Cmd.Process.Kill()
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		t.Errorf("%s did not exit after kill", p.Name)
	}
}

// WaitHTTP polls url until it answers with status want (any status when
// want is 0); it fails the test if the process exits first or within
// passes. A nil client is one with a 1 s timeout.
func (p *Process) WaitHTTP(t testing.TB, client *http.Client, url string, want int, within time.Duration) {
	t.Helper()
	if client == nil {
		client = &http.Client{Timeout: time.Second}
	}
	deadline := time.Now().Add(within)
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if want == 0 || resp.StatusCode == want {
				return
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited before serving %s: %v\n%s", p.Name, url, p.err, p.Log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not serving %s after %v: %v\n%s", p.Name, url, within, err, p.Log)
		}
		time.Sleep(50 * time.Millisecond) // another process: nothing signals its readiness
	}
}

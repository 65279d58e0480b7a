package nodeclient

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// Env names the environment variables this package reads.
const (
	// EnvNode overrides the node binary (default: "node" from PATH).
	EnvNode = "NODECLIENT_NODE"
	// EnvTrace, when "1", logs every line exchanged with the driver.
	EnvTrace = "NODECLIENT_TRACE"
)

const (
	// readyTimeout bounds Node's start-up (require of both client versions);
	// generous because tests run in parallel under -race on 2 cores.
	readyTimeout = 20 * time.Second
	// exitGrace is how long a Node process gets to exit after its stdin is
	// closed before it is killed, and again after the kill.
	exitGrace = 5 * time.Second
	// pipeWaitDelay bounds how long exec waits for stdio copying after exit.
	pipeWaitDelay = 2 * time.Second
)

// Env is where the tests found Node and the npm packages of testdata/.
type Env struct {
	Node     string // path of the node binary
	Testdata string // absolute path of the module's testdata directory
}

// Locate finds node and testdata/node_modules with both client versions. When
// something is missing it skips the test, or fails it when CI=true, so that a
// CI machine cannot silently pass without running the real clients.
func Locate(t testing.TB) Env {
	t.Helper()
	if testing.Short() {
		t.Skip("needs Node: skipped under -short (the fast loop)")
	}
	env, err := locate()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("nodeclient: %v (CI=true, so this is a failure, not a skip)", err)
		}
		t.Skipf("nodeclient: %v", err)
	}
	return env
}

func locate() (Env, error) {
	node := os.Getenv(EnvNode)
	if node == "" {
		node = "node"
	}
	nodePath, err := exec.LookPath(node)
	if err != nil {
		return Env{}, fmt.Errorf("finding node: %w (install Node 18+ or set %s)", err, EnvNode)
	}
	td, err := testdataDir()
	if err != nil {
		return Env{}, err
	}
	for _, pkg := range []string{"socket.io-client", "socket.io-client-v3", "socket.io"} {
		if _, err := os.Stat(filepath.Join(td, "node_modules", pkg, "package.json")); err != nil {
			return Env{}, fmt.Errorf("finding npm package %s: %w (run `cd testdata && npm ci`)", pkg, err)
		}
	}
	return Env{Node: nodePath, Testdata: td}, nil
}

// testdataDir finds the module's testdata directory: first next to this
// source file (normal `go test`), then by walking up from the working
// directory to go.mod (binaries built with -trimpath).
func testdataDir() (string, error) {
	var candidates []string
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		candidates = append(candidates, filepath.Join(filepath.Dir(file), "..", "..", "testdata"))
	}
	if wd, err := os.Getwd(); err == nil {
		for dir := wd; ; dir = filepath.Dir(dir) {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				candidates = append(candidates, filepath.Join(dir, "testdata"))
				break
			}
			if filepath.Dir(dir) == dir {
				break
			}
		}
	}
	for _, c := range candidates {
		if _, err := os.Stat(filepath.Join(c, "client", "driver.cjs")); err == nil {
			return filepath.Abs(c)
		}
	}
	return "", errors.New("finding testdata/client/driver.cjs: not found next to the source or above the working directory")
}

// nodeProc is one Node process whose stdout lines go to a callback and whose
// stderr lines go to the test log.
type nodeProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan struct{} // closed after stdout hit EOF and the process was reaped
	err   error         // result of cmd.Wait, valid after done
}

// startNode runs `node script args...` in env.Testdata. onLine runs on the
// reader goroutine for every non-empty stdout line.
func startNode(t testing.TB, env Env, name string, onLine func([]byte), script string, args ...string) (*nodeProc, error) {
	cmd := exec.Command(env.Node, append([]string{filepath.Join(env.Testdata, "client", script)}, args...)...)
	cmd.Dir = env.Testdata
	cmd.Stderr = &lineLogger{t: t, prefix: name + ": "}
	cmd.WaitDelay = pipeWaitDelay
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &nodeProc{cmd: cmd, stdin: stdin, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		br := bufio.NewReaderSize(stdout, 64<<10)
		for {
			line, err := br.ReadBytes('\n')
			if line = bytes.TrimSpace(line); len(line) > 0 {
				onLine(line)
			}
			if err != nil {
				break
			}
		}
		p.err = cmd.Wait()
		cmd.Stderr.(*lineLogger).flush()
	}()
	return p, nil
}

// stop closes stdin (both scripts exit on EOF), then kills the process if it
// has not exited within exitGrace. It returns once the reader goroutine ended.
func (p *nodeProc) stop(t testing.TB, name string) {
	_ = p.stdin.Close()
	select {
	case <-p.done:
		return
	case <-time.After(exitGrace):
	}
	t.Logf("nodeclient: %s did not exit after stdin closed; killing it", name)
	_ = p.cmd.Process.Kill()
	select {
	case <-p.done:
	case <-time.After(exitGrace):
		t.Errorf("nodeclient: %s did not exit after kill", name)
	}
}

// lineLogger sends each complete line written to it to t.Logf.
type lineLogger struct {
	t      testing.TB
	prefix string
	mu     sync.Mutex
	buf    []byte
}

func (l *lineLogger) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, b...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		l.t.Logf("%s%s", l.prefix, strings.TrimRight(string(l.buf[:i]), "\r"))
		l.buf = l.buf[i+1:]
	}
	return len(b), nil
}

func (l *lineLogger) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) > 0 {
		l.t.Logf("%s%s", l.prefix, l.buf)
		l.buf = nil
	}
}

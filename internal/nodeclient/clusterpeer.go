package nodeclient

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// peerCallTimeout bounds one command of a ClusterPeer.
const peerCallTimeout = 15 * time.Second

// ClusterPeer is testdata/client/cluster-peer.cjs: a Node socket.io 4.8
// server with @socket.io/redis-adapter 8.3 (classic) and a
// @socket.io/redis-emitter 5.1 on the same Redis, driven by commands (see
// the script for the list). Its methods are safe for concurrent use.
type ClusterPeer struct {
	t    testing.TB
	proc *nodeProc
	URL  string // http://127.0.0.1:PORT

	seq     atomic.Int64
	writeMu sync.Mutex
	mu      sync.Mutex
	waiting map[int64]chan peerReply
}

type peerReply struct {
	Seq    int64           `json:"seq"`
	OK     bool            `json:"ok"`
	Result json.RawMessage `json:"result"`
	Error  string          `json:"error"`
}

// StartClusterPeer starts the peer on redisURL with channel prefix key
// ("" for socket.io's default). Skips like Start; t.Cleanup stops it.
func StartClusterPeer(t testing.TB, redisURL, key string) *ClusterPeer {
	t.Helper()
	env := Locate(t)
	p := &ClusterPeer{t: t, waiting: map[int64]chan peerReply{}}
	ports := make(chan int, 1)
	onLine := func(line []byte) {
		var msg struct {
			Type string `json:"type"`
			Port int    `json:"port"`
			Seq  *int64 `json:"seq"`
		}
		if json.Unmarshal(line, &msg) != nil {
			t.Logf("cluster-peer: %s", line)
			return
		}
		if msg.Type == "listening" {
			select {
			case ports <- msg.Port:
			default:
			}
			return
		}
		if msg.Seq != nil {
			var r peerReply
			_ = json.Unmarshal(line, &r)
			p.mu.Lock()
			ch := p.waiting[r.Seq]
			delete(p.waiting, r.Seq)
			p.mu.Unlock()
			if ch != nil {
				ch <- r
			}
			return
		}
		t.Logf("cluster-peer: %s", line)
	}
	args := []string{redisURL}
	if key != "" {
		args = append(args, key)
	}
	proc, err := startNode(t, env, "cluster-peer", onLine, "cluster-peer.cjs", args...)
	if err != nil {
		t.Fatalf("nodeclient: %v", err)
	}
	p.proc = proc
	t.Cleanup(func() { proc.stop(t, "cluster-peer") })
	select {
	case port := <-ports:
		p.URL = fmt.Sprintf("http://127.0.0.1:%d", port)
	case <-proc.done:
		t.Fatalf("nodeclient: cluster-peer exited before listening: %v", proc.err)
	case <-time.After(readyTimeout):
		t.Fatalf("nodeclient: cluster-peer not listening after %v", readyTimeout)
	}
	return p
}

// Call runs cmd with args (Go []byte become Buffers, see toWire) and
// decodes its result into out (nil to ignore it). A command the peer
// rejected returns its error message.
func (p *ClusterPeer) Call(out any, cmd string, args map[string]any) error {
	seq := p.seq.Add(1)
	msg := map[string]any{"seq": seq, "cmd": cmd}
	for k, v := range args {
		msg[k] = toWire(v)
	}
	b, err := json.Marshal(msg)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", cmd, err)
	}
	ch := make(chan peerReply, 1)
	p.mu.Lock()
	p.waiting[seq] = ch
	p.mu.Unlock()
	p.writeMu.Lock()
	_, err = p.proc.stdin.Write(append(b, '\n'))
	p.writeMu.Unlock()
	if err != nil {
		return fmt.Errorf("sending %s: %w", cmd, err)
	}
	select {
	case r := <-ch:
		if !r.OK {
			return errors.New(r.Error)
		}
		if out == nil {
			return nil
		}
		var v any
		if err := json.Unmarshal(r.Result, &v); err != nil {
			return fmt.Errorf("decoding the result of %s: %w", cmd, err)
		}
		b, _ := json.Marshal(fromWire(v))
		return json.Unmarshal(b, out)
	case <-p.proc.done:
		return fmt.Errorf("%s: cluster-peer exited", cmd)
	case <-time.After(peerCallTimeout):
		return fmt.Errorf("%s: no answer within %v", cmd, peerCallTimeout)
	}
}

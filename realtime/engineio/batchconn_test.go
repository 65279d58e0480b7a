package engineio

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server := <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	_ = client.SetDeadline(time.Now().Add(testTimeout))
	_ = server.SetDeadline(time.Now().Add(testTimeout))
	return client, server
}

// TestBatchConnWrites: writes between begin and flush reach the peer in
// order, as one piece; writes outside a batch go straight through.
func TestBatchConnWrites(t *testing.T) {
	a, peer := tcpPair(t)
	b := &batchConn{Conn: a}
	b.begin()
	var want []byte
	for i := range 50 {
		chunk := bytes.Repeat([]byte{byte('a' + i%26)}, 100+i)
		want = append(want, chunk...)
		if n, err := b.Write(chunk); err != nil || n != len(chunk) {
			t.Fatalf("batched write %d: %d, %v", i, n, err)
		}
	}
	if err := b.flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Write([]byte("after")); err != nil {
		t.Fatal(err)
	}
	want = append(want, "after"...)
	got := make([]byte, len(want))
	if _, err := io.ReadFull(peer, got); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("peer read %v: bytes differ", err)
	}
}

// TestBatchConnLargeBatch: a batch larger than the pooled size goes out in
// pieces, nothing lost.
func TestBatchConnLargeBatch(t *testing.T) {
	a, peer := tcpPair(t)
	b := &batchConn{Conn: a}
	want := bytes.Repeat([]byte("0123456789"), 3*maxPooledBatch/10)
	done := make(chan []byte, 1)
	go func() {
		got := make([]byte, len(want))
		_, _ = io.ReadFull(peer, got)
		done <- got
	}()
	b.begin()
	for i := 0; i < len(want); i += 1000 {
		if _, err := b.Write(want[i:min(i+1000, len(want))]); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.flush(); err != nil {
		t.Fatal(err)
	}
	if got := <-done; !bytes.Equal(got, want) {
		t.Fatal("large batch arrived changed")
	}
}

// deadlineConn records the write deadlines that reach the connection.
type deadlineConn struct {
	net.Conn
	set []time.Time
}

func (d *deadlineConn) SetWriteDeadline(t time.Time) error {
	d.set = append(d.set, t)
	return nil
}

// TestBatchConnWriteDeadline: a deadline only slightly later than the
// current one keeps it; a much later one, an earlier one and clearing
// reach the connection.
func TestBatchConnWriteDeadline(t *testing.T) {
	dc := &deadlineConn{}
	bc := &batchConn{Conn: dc}
	t0 := time.Now().Add(10 * time.Second)
	steps := []struct {
		at    time.Time
		apply bool
	}{
		{t0, true},                             // first
		{t0.Add(10 * time.Millisecond), false}, // the next frame, 10 ms later
		{t0.Add(500 * time.Millisecond), false},
		{t0.Add(2 * time.Second), true},   // drifted past the slack
		{t0.Add(-5 * time.Second), true},  // earlier: a close frame's bound
		{t0.Add(-5 * time.Second), false}, // the same again
		{time.Time{}, true},               // cleared
		{t0.Add(3 * time.Second), true},   // after clearing, any deadline
	}
	want := 0
	for i, st := range steps {
		_ = bc.SetWriteDeadline(st.at)
		if st.apply {
			want++
		}
		if len(dc.set) != want {
			t.Fatalf("step %d: %d deadlines reached the connection, want %d", i, len(dc.set), want)
		}
		if st.apply && !dc.set[want-1].Equal(st.at) {
			t.Fatalf("step %d: deadline %v, want %v", i, dc.set[want-1], st.at)
		}
	}
}

// A deadline that has passed is never kept, however close the new one is:
// with a write timeout under deadlineSlack (frames 300 ms apart, a 200 ms
// timeout) the next frame's deadline is less than deadlineSlack after the
// last one, which is already over, and a kept one would fail a write that
// has its full timeout.
func TestBatchConnWriteDeadlinePassed(t *testing.T) {
	a, peer := tcpPair(t)
	go func() { _, _ = io.Copy(io.Discard, peer) }()
	bc := &batchConn{Conn: a}
	const timeout = 200 * time.Millisecond
	for i := range 3 {
		if i > 0 {
			time.Sleep(timeout + 100*time.Millisecond)
		}
		if err := bc.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
			t.Fatal(err)
		}
		if _, err := bc.Write([]byte("frame")); err != nil {
			t.Fatalf("write %d, 300 ms after the last: %v", i, err)
		}
	}
}

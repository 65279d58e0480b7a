//go:build unix

package engineio

import (
	"bytes"
	"errors"
	"io"
	"net"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// A direct write allocates only the RawConn that SyscallConn returns: the
// callback and what it found come from a pool (a closure handed to
// RawConn.Control escapes, with its results: three allocations per write).
func TestRawWriteAllocs(t *testing.T) {
	if raceSlowdown > 1 { // the race detector is on
		t.Skip("the race detector drops pooled values at random")
	}
	a, peer := tcpPair(t)
	go func() { _, _ = io.Copy(io.Discard, peer) }()
	b := &batchConn{Conn: a}
	p := []byte("0123456789")
	allocs := testing.AllocsPerRun(200, func() {
		if n, err := b.rawWrite(p); err != nil || n != len(p) {
			t.Fatalf("rawWrite: %d, %v", n, err)
		}
	})
	if allocs > 1 {
		t.Errorf("%.1f allocations per direct write, want at most 1", allocs)
	}
}

// A direct write reaches the peer whole over both kinds of socket the
// engine writes to directly (TCP and unix stream sockets), and what a
// write cannot do ends in an error, never a signal or a block: the
// peer gone (EPIPE or a reset, no SIGPIPE), the connection closed (the
// descriptor is not written to once Close has begun).
func TestRawWriteSockets(t *testing.T) {
	unixPair := func(t *testing.T) (net.Conn, net.Conn) {
		t.Helper()
		ln, err := net.Listen("unix", filepath.Join(t.TempDir(), "s"))
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		accepted := make(chan net.Conn, 1)
		go func() {
			c, _ := ln.Accept()
			accepted <- c
		}()
		a, err := net.Dial("unix", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		b := <-accepted
		if b == nil {
			t.Fatal("accept failed")
		}
		t.Cleanup(func() { a.Close(); b.Close() })
		return a, b
	}
	for _, tt := range []struct {
		name string
		pair func(*testing.T) (net.Conn, net.Conn)
	}{{"tcp", tcpPair}, {"unix", unixPair}} {
		t.Run(tt.name, func(t *testing.T) {
			a, peer := tt.pair(t)
			b := &batchConn{Conn: a}
			p := []byte("0123456789")
			if n, err := b.rawWrite(p); err != nil || n != len(p) {
				t.Fatalf("rawWrite: %d, %v", n, err)
			}
			got := make([]byte, len(p))
			_ = peer.SetReadDeadline(time.Now().Add(testTimeout))
			if _, err := io.ReadFull(peer, got); err != nil || !bytes.Equal(got, p) {
				t.Fatalf("peer read %q, %v; want %q", got, err, p)
			}
			if n, err := b.rawWrite(nil); n != 0 || err != nil {
				t.Fatalf("an empty write: %d, %v", n, err)
			}

			// The peer goes: a write fails within a few tries (the
			// first may still be taken by the kernel before the
			// reset arrives).
			peer.Close()
			var err error
			for try := 0; try < 50 && err == nil; try++ {
				_, err = b.rawWrite(p)
				if err == nil {
					time.Sleep(time.Millisecond)
				}
			}
			if !errors.Is(err, syscall.EPIPE) && !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("writing to a closed peer: %v, want EPIPE or ECONNRESET", err)
			}

			a.Close()
			if n, err := b.rawWrite(p); n != 0 || !errors.Is(err, net.ErrClosed) {
				t.Fatalf("writing after Close: %d, %v; want net.ErrClosed", n, err)
			}
		})
	}
}

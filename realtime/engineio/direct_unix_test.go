//go:build unix

package engineio

import (
	"io"
	"testing"
)

// A direct write allocates only the RawConn that SyscallConn returns: the
// callback and what it found come from a pool (a closure handed to
// RawConn.Write escaped, with its results: three allocations per write).
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

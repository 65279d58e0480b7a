//go:build !unix

package engineio

import (
	"net"
	"time"
)

// directFD: no direct writes on this platform; every write goes through
// the writer goroutine.
type directFD struct{}

func (*directFD) open(net.Conn)             {}
func (*directFD) usable() bool              { return false }
func (*directFD) write([]byte) (int, error) { return 0, errNoDescriptor }
func (*directFD) close()                    {}

// processCPU is never sampled here (no direct writes).
func processCPU() time.Duration { return 0 }

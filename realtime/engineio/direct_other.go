//go:build !unix

package engineio

import "time"

// directWrites: no direct writes here; every write goes through the writer
// goroutine.
const directWrites = false

// rawWrite is never reached here (directWrites).
func (b *batchConn) rawWrite([]byte) (int, error) { return 0, errNoDescriptor }

// processCPU is never sampled here (directWrites).
func processCPU() time.Duration { return 0 }

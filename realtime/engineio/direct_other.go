//go:build !unix

package engineio

// directWrites: no direct writes here; every write goes through the writer
// goroutine.
const directWrites = false

// rawWrite is never reached here (directWrites).
func (b *batchConn) rawWrite([]byte) (int, error) { return 0, errNoDescriptor }

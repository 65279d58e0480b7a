//go:build !linux

package engineio

import (
	"errors"
	"net"
	"time"
)

// poller is not implemented off Linux: readers stay goroutines blocked in
// their read (see park.go).
type poller struct{}

func newPoller(*parkState) (*poller, error) {
	return nil, errors.New("parking websocket readers needs Linux")
}

func (*poller) stop() {}

func (*poller) arm(*batchConn, *parker) error {
	return errors.New("parking websocket readers needs Linux")
}

// errRetired is never returned here.
var errRetired = errors.New("poller retired")

func (*poller) forget(*batchConn, *parker) {}

// waitReadable: readers do not park here, so they read at once (having
// peeked at nothing).
func waitReadable(net.Conn, time.Duration, []byte) (bool, int) { return true, 0 }

package engineio

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// DefaultCompressionThreshold is Node's threshold for both compressions
// (engine.io httpCompression and perMessageDeflate): smaller payloads are
// sent as they are, where compressing costs more than it saves.
const DefaultCompressionThreshold = 1024

// Compression configures what the server compresses.
//
// WebSocket (permessage-deflate, RFC 7692) is off by default, as in Node:
// when on, it is negotiated with every client that offers it (browsers
// always do) in gorilla/websocket's only mode, no context takeover on
// either side, so a connection keeps no compression window between
// messages: an idle connection costs no more than without it, at the price
// of a lower ratio than Node's default. Frames below Threshold go out
// uncompressed. A client's compressed frame may inflate to at most
// MaxPayload bytes; past that the connection is closed with 1009 (message
// too big), as for an uncompressed frame over MaxPayload.
//
// Polling responses are compressed by default, as Node does: with gzip or
// deflate, whichever the request's Accept-Encoding prefers, when the body
// is at least Threshold bytes. The POST reply "ok" never is.
type Compression struct {
	// WebSocket enables permessage-deflate. Default: false.
	WebSocket bool
	// DisablePolling turns off the compression of polling responses.
	// Default: false (compressed).
	DisablePolling bool
	// Threshold is the smallest payload, in bytes, that is compressed: a
	// websocket frame, or a polling response body. Default: 1024.
	Threshold int
}

func (c Compression) withDefaults() Compression {
	if c.Threshold <= 0 {
		c.Threshold = DefaultCompressionThreshold
	}
	return c
}

// compressUpgrader is upgrader with permessage-deflate offered.
var compressUpgrader = func() *websocket.Upgrader {
	u := upgrader
	u.EnableCompression = true
	return &u
}()

// upgraderFor picks the upgrader of a config.
func (c *config) upgraderFor() *websocket.Upgrader {
	if c.Compression.WebSocket {
		return compressUpgrader
	}
	return &upgrader
}

// setWriteCompression decides, before each data frame of n bytes, whether
// it is compressed (gorilla has no threshold of its own). A no-op on a
// connection that did not negotiate the extension.
func (c *config) setWriteCompression(conn *websocket.Conn, n int) {
	if c.Compression.WebSocket {
		conn.EnableWriteCompression(n >= c.Compression.Threshold)
	}
}

// errInflatedTooLarge: a compressed frame inflated past MaxPayload.
var errInflatedTooLarge = errors.New("websocket: message inflates past max payload")

// readMessage reads one websocket message. gorilla's read limit counts the
// bytes on the wire, so with compression a small frame could inflate to
// any size: the inflated message is read through a limit of MaxPayload,
// and a message over it closes the connection with 1009, as gorilla does
// for a frame over the read limit.
func (s *Session) readMessage(c *websocket.Conn) (int, []byte, error) {
	if !s.cfg.Compression.WebSocket {
		return c.ReadMessage()
	}
	mt, r, err := c.NextReader()
	if err != nil {
		return mt, nil, err
	}
	p, err := io.ReadAll(io.LimitReader(r, s.cfg.MaxPayload+1))
	if err != nil {
		return mt, nil, err
	}
	if int64(len(p)) > s.cfg.MaxPayload {
		msg := websocket.FormatCloseMessage(websocket.CloseMessageTooBig, "")
		_ = c.WriteControl(websocket.CloseMessage, msg, time.Now().Add(closeFrameTimeout))
		return mt, nil, errInflatedTooLarge
	}
	return mt, p, nil
}

// Content types of polling responses.
const (
	contentTypeText   = "text/plain; charset=UTF-8"
	contentTypeBinary = "application/octet-stream"
)

// Pools of compressors, one per encoding: a flate writer holds about
// 600 KiB, so they are shared by the responses being written, never kept
// per session. BestSpeed, as a realtime payload is small and the CPU is
// better spent elsewhere.
var (
	gzipPool = sync.Pool{New: func() any {
		w, _ := gzip.NewWriterLevel(io.Discard, flate.BestSpeed)
		return w
	}}
	zlibPool = sync.Pool{New: func() any {
		w, _ := zlib.NewWriterLevel(io.Discard, flate.BestSpeed)
		return w
	}}
)

// pollEncoding returns the encoding to compress a polling response body
// of n bytes with, "gzip", "deflate" or "" for none.
func (c *config) pollEncoding(r *http.Request, n int) string {
	if c.Compression.DisablePolling || n < c.Compression.Threshold {
		return ""
	}
	return acceptedEncoding(r.Header.Values("Accept-Encoding"))
}

// acceptedEncoding picks gzip or deflate from Accept-Encoding values, by
// q-value, gzip first when equal (Node: accepts(req).encodings(["gzip",
// "deflate"])). A "*" stands for any encoding not named.
func acceptedEncoding(values []string) string {
	q := map[string]float64{}
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
			name = strings.ToLower(strings.TrimSpace(name))
			weight := 1.0
			for _, p := range strings.Split(params, ";") {
				k, val, ok := strings.Cut(strings.TrimSpace(p), "=")
				if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
					if f, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
						weight = f
					}
				}
			}
			if name != "" {
				q[name] = weight
			}
		}
	}
	weight := func(name string) float64 {
		if w, ok := q[name]; ok {
			return w
		}
		if w, ok := q["*"]; ok {
			return w
		}
		return 0
	}
	g, d := weight("gzip"), weight("deflate")
	switch {
	case g > 0 && g >= d:
		return "gzip"
	case d > 0:
		return "deflate"
	}
	return ""
}

// compressBody compresses body with enc ("gzip" or "deflate", the zlib
// format as HTTP means it).
func compressBody(enc string, body []byte) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(len(body)/2 + 64)
	switch enc {
	case "gzip":
		w := gzipPool.Get().(*gzip.Writer)
		defer gzipPool.Put(w)
		w.Reset(&buf)
		if _, err := w.Write(body); err != nil {
			return nil, err
		}
		if err := w.Close(); err != nil {
			return nil, err
		}
	case "deflate":
		w := zlibPool.Get().(*zlib.Writer)
		defer zlibPool.Put(w)
		w.Reset(&buf)
		if _, err := w.Write(body); err != nil {
			return nil, err
		}
		if err := w.Close(); err != nil {
			return nil, err
		}
	default:
		return body, nil
	}
	return buf.Bytes(), nil
}

package engineio

import (
	"errors"
	"io"
	"mime"
	"net/http"

	"go.uber.org/zap"
)

// errStopPayload stops decoding a POST once the session is closed by one
// of its packets (a close packet, a client ping).
var errStopPayload = errors.New("session closed by payload")

var (
	closePayload = []byte{typeClose}
	okBody       = []byte("ok")
	// The control packets a GET may answer alone; shared, never modified.
	noopPackets  = []outPacket{{typ: typeNoop}}
	closePackets = []outPacket{{typ: typeClose}}
)

// servePoll answers a polling GET: it blocks until something is queued,
// then returns the queued packets in one payload of at most MaxPayload
// bytes (at least one packet; the rest waits for the next GET). Only one
// GET may be in flight: a second one is refused and closes the session,
// the first then gets the close packet.
func (srv *Server) servePoll(w http.ResponseWriter, r *http.Request, s *Session) {
	s.mu.Lock()
	if s.getActive {
		s.mu.Unlock()
		s.closeWith(ReasonTransportError, kindError, onCloseHere)
		srv.refuse(w, r, s.cfg, errBadRequest, false)
		return
	}
	s.getActive = true
	gen := srv.releases.Load()
	var pkts []outPacket
	size := 1
	for {
		if s.closed {
			switch s.kind {
			case kindGraceful, kindShutdown:
				pkts, size = s.lastPollLocked()
			case kindClient:
				pkts = noopPackets
				s.lingering = false
			default:
				pkts = closePackets
				s.lingering = false
			}
			break
		}
		if s.onWS {
			// Upgraded while this GET waited: end it cleanly; the queue
			// now belongs to the websocket.
			pkts = noopPackets
			break
		}
		if len(s.queue) > 0 {
			pkts, size = s.takePollLocked(nil, s.cfg.MaxPayload)
			break
		}
		if s.probed {
			// Upgrading: release the GET so the client can pause polling.
			pkts = noopPackets
			break
		}
		if srv.releases.Load() != gen {
			// ReleasePolls: the HTTP server carrying this GET is shutting
			// down; the client polls again on a new connection.
			pkts = noopPackets
			break
		}
		s.mu.Unlock()
		select {
		case <-s.pollNotify:
		case <-r.Context().Done():
			// The client went away; the heartbeat decides whether the
			// session is dead, as in Node.
			s.mu.Lock()
			s.getActive = false
			s.unlockAndFinalize()
			return
		}
		s.mu.Lock()
	}
	s.getActive = false
	s.unlockAndFinalize()
	s.writePoll(w, r, pkts, size)
}

// writePoll encodes the packets of a polling response in the session's
// protocol (size is their v4 encoded size, a capacity hint) and writes
// it, compressed if the client accepts it and it is large enough.
func (s *Session) writePoll(w http.ResponseWriter, r *http.Request, pkts []outPacket, size int) {
	var body []byte
	ct := contentTypeText
	if s.v3 != nil {
		body, ct = s.v3.encodePoll(pkts, size)
	} else {
		body = appendPayload(make([]byte, 0, size), pkts)
	}
	if ce := s.log().Check(zap.DebugLevel, "poll response"); ce != nil {
		ce.Write(zap.Int("bytes", len(body)))
	}
	writePollBody(w, r, s.cfg, body, ct)
}

// serveData handles a polling POST: the client's packets. Only one POST
// may be in flight; a body over MaxPayload is refused with 413 and the
// session stays open; a body that does not decode (not UTF-8, a bad
// packet, more than MaxPayloadPackets packets) is refused with 400 and
// closes the session.
func (srv *Server) serveData(w http.ResponseWriter, r *http.Request, s *Session) {
	s.mu.Lock()
	if s.postActive {
		s.mu.Unlock()
		s.closeWith(ReasonTransportError, kindError, onCloseHere)
		srv.refuse(w, r, s.cfg, errBadRequest, false)
		return
	}
	s.postActive = true
	closed := s.closed
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.postActive = false
		s.mu.Unlock()
	}()

	// Engine.IO v4 payloads are text; binary bodies belong to v3.
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	binaryBody := ct == contentTypeBinary
	if binaryBody && s.v3 == nil {
		s.closeWith(ReasonTransportError, kindError, onCloseHere)
		srv.refuse(w, r, s.cfg, errBadRequest, false)
		return
	}
	limit := s.cfg.MaxPayload
	if r.ContentLength > limit {
		http.Error(w, "payload too large", http.StatusRequestEntityTooLarge)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		// The client went away mid-body; as for a GET, the heartbeat
		// decides.
		return
	}
	if int64(len(body)) > limit {
		http.Error(w, "payload too large", http.StatusRequestEntityTooLarge)
		return
	}
	if closed {
		// A lingering session: the client's packets no longer matter.
		writeOK(w)
		return
	}
	handle := func(p packet) error {
		if !s.handlePacket(p) {
			return errStopPayload
		}
		return nil
	}
	if s.v3 != nil {
		err = s.v3.decodePayloadV3(body, binaryBody, s.cfg.MaxPayloadPackets, handle)
	} else {
		err = decodePayload(body, s.cfg.MaxPayloadPackets, handle)
	}
	if err != nil && !errors.Is(err, errStopPayload) {
		if errors.Is(err, errTooManyPackets) {
			s.log().Warn("closing session: polling payload over the packet limit",
				zap.String("reason", ReasonParseError), zap.Int("limit_packets", s.cfg.MaxPayloadPackets),
				zap.Int("bytes", len(body)), zap.String("remote", r.RemoteAddr))
		} else if ce := s.log().Check(zap.DebugLevel, "bad polling payload"); ce != nil {
			ce.Write(zap.Error(err))
		}
		s.closeWith(ReasonParseError, kindError, onCloseHere)
		srv.refuse(w, r, s.cfg, errBadRequest, false)
		return
	}
	writeOK(w)
}

// lastPollLocked builds the response of a GET to a gracefully closed
// session: queued packets, then the close packet once they all fit. A
// backlog over MaxPayload takes several GETs, so the session lingers for
// the next one (up to pollingCloseLinger since the close, or since this
// GET if none was lingering); on shutdown no later GET comes and what
// does not fit is dropped.
func (s *Session) lastPollLocked() ([]outPacket, int) {
	// Room for the separator and "1" after the packets.
	pkts, size := s.takePollLocked(nil, s.cfg.MaxPayload-2)
	if len(s.queue) > 0 && s.kind == kindGraceful {
		if !s.lingering {
			s.lingering = true
			s.lingerTimer = s.cfg.clock.AfterFunc(pollingCloseLinger, s.endLinger)
		}
		return pkts, size
	}
	s.dropQueueLocked()
	s.lingering = false
	pkts = append(pkts, outPacket{typ: typeClose})
	return pkts, size + 2
}

func writeOK(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/html")
	h.Set("Content-Length", "2")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(okBody)
}

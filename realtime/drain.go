package realtime

import (
	"maps"
	"math/rand/v2"
	"slices"
	"time"
)

// ReasonServerShutdown is the close reason of Close and Drain, Node's for
// io.close().
const ReasonServerShutdown = "server shutting down"

// Drain closes the server as Close does, but spreads the closing of the
// connections over d instead of closing them all at once, so that their
// clients do not all reconnect (to another server) in the same instant.
// New connections are refused from the start. The connections are taken in
// a random order, each closed at a random time within its share of d, with
// an Engine.IO close packet (a polling client's waiting GET gets it, or the
// next one does); when d has passed, what remains is closed as by Close.
// Drain returns when the server is closed, at most d plus Close's bound;
// a concurrent Close or Drain returns then too.
func (s *Server) Drain(d time.Duration) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		<-s.closeDone
		return
	}
	s.closed = true
	conns := slices.Collect(maps.Keys(s.conns))
	s.mu.Unlock()
	defer close(s.closeDone)
	defer s.limits.addrs.Close()
	defer s.connectWait.stop()
	if d > 0 && len(conns) > 0 {
		spreadClose(conns, d)
	}
	s.engine.Close()
	for _, n := range s.Namespaces() {
		s.closeAdapter(n)
	}
	s.closeRecovery()
}

// spreadClose closes conns over d: the i-th of n, in a random order, at a
// random point of [i, i+1) * d/n from now.
func spreadClose(conns []*conn, d time.Duration) {
	rand.Shuffle(len(conns), func(i, j int) { conns[i], conns[j] = conns[j], conns[i] }) //nolint:gosec // jitter, not a secret
	start := time.Now()
	slot := d / time.Duration(len(conns))
	t := time.NewTimer(0)
	defer t.Stop()
	<-t.C
	for i, c := range conns {
		at := start.Add(slot*time.Duration(i) + rand.N(slot+1)) //nolint:gosec // jitter, not a secret
		if wait := time.Until(at); wait > 0 {
			t.Reset(wait)
			<-t.C
		}
		c.sess.Close(ReasonServerShutdown)
	}
}

package engineio

import (
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// TestSessionLogsCarryTheID: session entries name their session, and a
// disabled level writes nothing.
func TestSessionLogsCarryTheID(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	l := sessionLogger{base: zap.New(core), sid: "abc"}
	if e := l.Check(zapcore.DebugLevel, "hidden"); e != nil {
		t.Fatal("debug entry checked at info level")
	}
	l.Warn("closing slow client", zap.Int("queued", 3))
	entries := logs.All()
	if len(entries) != 1 {
		t.Fatalf("%d entries, want 1", len(entries))
	}
	fields := entries[0].ContextMap()
	if fields["sid"] != "abc" || fields["queued"] != int64(3) || entries[0].Message != "closing slow client" {
		t.Fatalf("entry %q with fields %v", entries[0].Message, fields)
	}
}

// TestServerLogsUnderItsName: the engine names its logger "engineio" once,
// and its messages carry no prefix of their own.
func TestServerLogsUnderItsName(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	ts := newTServer(t, Options{Logger: zap.New(core).Named("app")})
	sid := ts.handshake()
	opened := logs.FilterMessage("session opened").All()
	if len(opened) != 1 || opened[0].LoggerName != "app.engineio" || opened[0].ContextMap()["sid"] != sid {
		t.Fatalf("session opened entries %v, want one from app.engineio with sid %s", opened, sid)
	}
}

package engineio

import (
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// sessionLogger tags a session's log entries with its id. It adds the
// field when an entry is written rather than holding a child logger: with
// a JSON core (Caddy's), zap's With clones an encoder and its buffer,
// which every idle connection would carry.
type sessionLogger struct {
	base *zap.Logger
	sid  string
}

// sessionEntry is a checked entry that writes the session id with it.
type sessionEntry struct {
	ce  *zapcore.CheckedEntry
	sid string
}

// Check is zap.Logger.Check: nil when the level is disabled.
func (l sessionLogger) Check(lvl zapcore.Level, msg string) *sessionEntry {
	ce := l.base.Check(lvl, msg)
	if ce == nil {
		return nil
	}
	return &sessionEntry{ce: ce, sid: l.sid}
}

// Warn logs at warn level.
func (l sessionLogger) Warn(msg string, fields ...zap.Field) {
	if e := l.Check(zapcore.WarnLevel, msg); e != nil {
		e.Write(fields...)
	}
}

// Write writes the entry with fields and the session id.
func (e *sessionEntry) Write(fields ...zap.Field) {
	e.ce.Write(append(fields, zap.String("sid", e.sid))...)
}

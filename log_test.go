package socketio

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestArgsForLog(t *testing.T) {
	if got := argsForLog([]any{"hi", json.Number("2"), []byte{1, 2, 3}, map[string]any{"b": []byte{1}}}); got != `["hi",2,"<3 bytes>",{"b":"<1 bytes>"}]` {
		t.Fatalf("argsForLog = %s", got)
	}
	long := argsForLog([]any{strings.Repeat("é", 1000)})
	if len(long) > maxLoggedArgs+len("…") || !strings.HasSuffix(long, "…") {
		t.Fatalf("not truncated: %d bytes", len(long))
	}
}

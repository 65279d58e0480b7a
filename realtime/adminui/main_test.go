package adminui

import (
	"os"
	"testing"

	"github.com/caddy-socketio/caddy-socketio/internal/testkit"
)

// The fast loop runs this package's timer-bound tests side by side.
func TestMain(m *testing.M) { os.Exit(testkit.RunShortWide(m)) }

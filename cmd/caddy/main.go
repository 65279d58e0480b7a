// Command caddy is Caddy with the socketio module plugged in, the same
// program `xcaddy build --with github.com/caddy-socketio/caddy-socketio`
// produces. It lets the example and the integration tests run with
// `go run ./cmd/caddy` and no xcaddy.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/caddy-socketio/caddy-socketio"
)

func main() {
	caddycmd.Main()
}

//go:build live

package cluster

import (
	"net/http"
	"strings"
	"testing"

	"github.com/caddy-socketio/caddy-socketio/internal/testkit"
)

// BenchmarkPollRoundTrip is one polling round trip (a POST of a message,
// then the GET that brings its echo back) on a session of node A, made
// directly at A or through node B, which forwards both requests: the cost
// of a balancer sending a session's requests anywhere.
//
//	go test -run '^$' -bench PollRoundTrip -benchtime 2000x ./realtime/cluster/
func BenchmarkPollRoundTrip(b *testing.B) {
	if testing.Short() {
		b.Skip("runs a real redis-server: skipped under -short")
	}
	for _, via := range []string{"direct", "forwarded"} {
		b.Run(via, func(b *testing.B) {
			rs := testkit.StartRedis(b)
			a := startNode(b, rs, nodeOpts{})
			fwd := startNode(b, rs, nodeOpts{})
			p := testkit.OpenPolling(b, a.url, nil, nil)
			u := p.URL
			if via == "forwarded" {
				u = strings.Replace(p.URL, a.addr, fwd.addr, 1)
			}
			b.ResetTimer()
			for range b.N {
				if status, _, err := p.Try(http.MethodPost, u, "4ping"); err != nil || status != 200 {
					b.Fatalf("POST: %d %v", status, err)
				}
				if status, body, err := p.Try(http.MethodGet, u, ""); err != nil || status != 200 || body != "4ping" {
					b.Fatalf("GET: %d %q %v", status, body, err)
				}
			}
		})
	}
}

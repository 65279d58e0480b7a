package socketio

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	// The directives the golden files use beside ours, not modules/standard:
	// that would link TLS automation, tracing and the rest into this test
	// binary and slow every run of the fast loop.
	_ "github.com/caddyserver/caddy/v2/modules/caddyhttp/caddyauth"
	_ "github.com/caddyserver/caddy/v2/modules/caddyhttp/encode"
	_ "github.com/caddyserver/caddy/v2/modules/caddyhttp/encode/gzip"
	_ "github.com/caddyserver/caddy/v2/modules/caddyhttp/encode/zstd"
	_ "github.com/caddyserver/caddy/v2/modules/caddyhttp/fileserver"
	_ "github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
	_ "github.com/caddyserver/caddy/v2/modules/caddyhttp/templates"
)

var update = flag.Bool("update", false, "rewrite the expected JSON of testdata/*.caddyfiletest (review the diff!)")

// TestCaddyfileAdapt adapts each testdata/*.caddyfiletest (a Caddyfile, a
// line of dashes, the expected JSON) and compares, as Caddy's own
// caddyfile_adapt tests do.
func TestCaddyfileAdapt(t *testing.T) {
	files, err := filepath.Glob("testdata/*.caddyfiletest")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no testdata/*.caddyfiletest files")
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			input, expected, ok := strings.Cut(string(data), "\n----------\n")
			if !ok {
				t.Fatalf("%s: no ---------- separator", file)
			}
			got, err := adapt(input)
			if err != nil {
				t.Fatalf("adapting: %v", err)
			}
			if *update {
				if err := os.WriteFile(file, []byte(input+"\n----------\n"+got+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if want := strings.TrimSpace(expected); got != want {
				t.Errorf("adapted JSON differs\n--- got ---\n%s\n--- want ---\n%s", got, want)
			}
		})
	}
}

func adapt(input string) (string, error) {
	out, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(input+"\n"), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		return "", err
	}
	for _, w := range warnings {
		return "", &warningError{w}
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, out, "", "\t"); err != nil {
		return "", err
	}
	return buf.String(), nil
}

type warningError struct{ w caddyconfig.Warning }

func (e *warningError) Error() string { return "warning: " + e.w.String() }

// TestCaddyfileErrors checks that bad input fails with the file and line.
func TestCaddyfileErrors(t *testing.T) {
	cases := []struct {
		name  string
		input string
		want  string
	}{
		{"unknown subdirective", "socketio {\n\tpath /x/\n\tbogus 1\n}", `unrecognized subdirective "bogus", at Caddyfile:3`},
		{"repeated subdirective", "socketio {\n\tpath /a/\n\tpath /b/\n}", `path: subdirective given twice, at Caddyfile:3`},
		{"argument on directive", "socketio /x/ extra {\n}", "wrong argument count"},
		{"missing path", "socketio {\n\tpath\n}", "wrong argument count or unexpected line ending after 'path', at Caddyfile:2"},
		{"too many path args", "socketio {\n\tpath /a/ /b/\n}", "at Caddyfile:2"},
		{"bad duration", "socketio {\n\n\tping_interval soon\n}", `ping_interval: invalid duration "soon"`},
		{"bad duration line", "socketio {\n\n\tping_interval soon\n}", "at Caddyfile:3"},
		{"zero duration", "socketio {\n\tconnect_timeout 0s\n}", "must be positive, at Caddyfile:2"},
		{"bad size", "socketio {\n\tmax_payload lots\n}", `max_payload: invalid size "lots", at Caddyfile:2`},
		{"bad transport", "socketio {\n\ttransports polling flash\n}", `unknown transport "flash" (want polling or websocket), at Caddyfile:2`},
		{"bad bool", "socketio {\n\tallow_upgrades maybe\n}", `allow_upgrades: want true or false, got "maybe", at Caddyfile:2`},
		{"missing list", "socketio {\n\trelay\n}", "at Caddyfile:2"},
		{"announce one arg", "socketio {\n\tannounce ev\n}", "at Caddyfile:2"},
		{"room_requests three args", "socketio {\n\troom_requests a b c\n}", "at Caddyfile:2"},
		{"auth bad mode", "socketio {\n\tauth maybe\n}", `auth: unknown mode "maybe" (want required, optional or off), at Caddyfile:2`},
		{"auth unknown", "socketio {\n\tauth {\n\t\tsecret x\n\t\tkid 1\n\t}\n}", `auth: unrecognized subdirective "kid", at Caddyfile:4`},
		{"auth repeated", "socketio {\n\tauth {\n\t\tsecret x\n\t\tsecret y\n\t}\n}", `auth: secret: subdirective given twice, at Caddyfile:4`},
		{"auth alg none", "socketio {\n\tauth {\n\t\tsecret x\n\t\talgorithms HS256 none\n\t}\n}", `algorithm "none" is never accepted, at Caddyfile:4`},
		{"auth off with key", "socketio {\n\tauth off {\n\t\tsecret x\n\t}\n}", "mode off takes no key"},
		{"auth bad leeway", "socketio {\n\tauth {\n\t\tsecret x\n\t\tleeway never\n\t}\n}", "at Caddyfile:4"},
		{"limits unknown", "socketio {\n\tlimits {\n\t\tconnections 3\n\t}\n}", `limits: unrecognized subdirective "connections", at Caddyfile:3`},
		{"limits bad rate", "socketio {\n\tlimits {\n\t\tevent_rate fast\n\t}\n}", `limits: event_rate: want a positive number of events per second, got "fast", at Caddyfile:3`},
		{"limits bad burst", "socketio {\n\tlimits {\n\t\tevent_rate 10 -1\n\t}\n}", `burst: want a positive number, got "-1", at Caddyfile:3`},
		{"limits zero rooms", "socketio {\n\tlimits {\n\t\tmax_rooms 0\n\t}\n}", `limits: max_rooms: want a positive number, got "0", at Caddyfile:3`},
		{"limits bad buffer", "socketio {\n\tlimits {\n\t\tsend_buffer 1MiB lots\n\t}\n}", `limits: send_buffer: invalid size "lots", at Caddyfile:3`},
		{"admin_ui unknown", "socketio {\n\tadmin_ui {\n\t\tusername a\n\t\tpassword x\n\t}\n}", `admin_ui: unrecognized subdirective "password", at Caddyfile:4`},
		{"admin_ui readonly arg", "socketio {\n\tadmin_ui {\n\t\treadonly yes\n\t}\n}", "at Caddyfile:3"},
		{"admin_ui no username", "socketio {\n\tadmin_ui {\n\t\tpassword_hash {env.H}\n\t}\n}", "admin_ui: username is required"},
		{"admin_ui bad hash", "socketio {\n\tadmin_ui {\n\t\tusername a\n\t\tpassword_hash secret\n\t}\n}", "admin_ui: password_hash: not a bcrypt hash"},
		{"admin_ui main namespace", "socketio {\n\tadmin_ui {\n\t\tusername a\n\t\tpassword_hash {env.H}\n\t\tnamespace /\n\t}\n}", `namespace "/": must start with / and not be the main namespace`},
		{"admin_ui served namespace", "socketio {\n\tadmin_ui {\n\t\tusername a\n\t\tpassword_hash {env.H}\n\t}\n\tnamespaces / /adm*\n}", `admin_ui: namespace "/admin" is also served by namespaces "/adm*"`},
		{"limits repeated", "socketio {\n\tlimits {\n\t\tmax_rooms 3\n\t\tmax_rooms 4\n\t}\n}", `limits: max_rooms: subdirective given twice, at Caddyfile:4`},
		{"recovery argument", "socketio {\n\trecovery 2m\n}", "wrong argument count or unexpected line ending after '2m', at Caddyfile:2"},
		{"recovery unknown", "socketio {\n\trecovery {\n\t\twindow 2m\n\t}\n}", `recovery: unrecognized subdirective "window", at Caddyfile:3`},
		{"recovery bad bool", "socketio {\n\trecovery {\n\t\tskip_middlewares often\n\t}\n}", `recovery: skip_middlewares: want true or false, got "often", at Caddyfile:3`},
		{"recovery zero window", "socketio {\n\trecovery {\n\t\tmax_disconnection_duration 0s\n\t}\n}", "must be positive, at Caddyfile:3"},
		{"recovery bad size", "socketio {\n\trecovery {\n\t\tbuffer lots\n\t}\n}", `buffer: invalid size "lots", at Caddyfile:3`},
		{"presence unknown", "socketio {\n\tpresence {\n\t\tkey x\n\t}\n}", `presence: unrecognized subdirective "key", at Caddyfile:3`},
		{"presence bad url", "socketio {\n\tpresence {\n\t\twebhook ftp://x\n\t}\n}", `presence: webhook: "ftp://x" is not an http or https URL, at Caddyfile:3`},
		{"presence without webhook block", "socketio {\n\tpresence {\n\t\twebhook http://127.0.0.1:1/p\n\t}\n}", "add a webhook block"},
		{"presence by the client", "socketio {\n\tpresence {\n\t\tby {socketio.query.user}\n\t}\n}", "{socketio.query.user} is chosen by the client"},
		{"presence by a literal", "socketio {\n\tpresence {\n\t\tby alice\n\t}\n}", "names every socket's user the same"},
		{"adapter no type", "socketio {\n\tadapter\n}", `adapter: want memory or redis <url>, at Caddyfile:2`},
		{"adapter unknown", "socketio {\n\tadapter nats nats://x\n}", `adapter: unknown type "nats" (want memory or redis), at Caddyfile:2`},
		{"adapter redis no url", "socketio {\n\tadapter redis\n}", `adapter: redis: a URL is required`},
		{"adapter redis bad scheme", "socketio {\n\tadapter redis http://x:1\n}", `scheme "http": want redis:// or rediss://, at Caddyfile:2`},
		{"adapter url not echoed", "socketio {\n\tadapter redis redis://u:hunter2@[::1\n}", `the URL does not parse`},
		{"adapter memory settings", "socketio {\n\tadapter memory {\n\t\tkey x\n\t}\n}", `adapter: key: only the redis adapter takes settings, at Caddyfile:3`},
		{"adapter bad advertise", "socketio {\n\tadapter redis redis://r:6379 {\n\t\tadvertise 10.0.0.1\n\t}\n}", `advertise: "10.0.0.1": want host:port`},
		{"adapter bad port", "socketio {\n\tadapter redis redis://r:6379 {\n\t\tadvertise h:70000\n\t}\n}", `port must be 1-65535`},
		{"adapter bad key", "socketio {\n\tadapter redis redis://r:6379 {\n\t\tkey a#b\n\t}\n}", `must not hold spaces or #`},
		{"adapter negative timeout", "socketio {\n\tadapter redis redis://r:6379 {\n\t\trequest_timeout -1s\n\t}\n}", `at Caddyfile:3`},
		{"adapter unknown sub", "socketio {\n\tadapter redis redis://r:6379 {\n\t\tsentinel x\n\t}\n}", `adapter: unrecognized subdirective "sentinel", at Caddyfile:3`},
		{"limits zero connections", "socketio {\n\tlimits {\n\t\tmax_connections 0\n\t}\n}", `limits: max_connections: want a positive number, got "0", at Caddyfile:3`},
		{"limits bad per ip", "socketio {\n\tlimits {\n\t\tmax_connections_per_ip many\n\t}\n}", `limits: max_connections_per_ip: want a positive number, got "many", at Caddyfile:3`},
		{"limits per subject two args", "socketio {\n\tlimits {\n\t\tmax_sockets_per_subject 3 4\n\t}\n}", "at Caddyfile:3"},
		{"limits bad handshake rate", "socketio {\n\tlimits {\n\t\thandshake_rate Inf\n\t}\n}", `limits: handshake_rate: want a positive number of handshakes per second, got "Inf", at Caddyfile:3`},
		{"limits handshake rate args", "socketio {\n\tlimits {\n\t\thandshake_rate 1 2 3\n\t}\n}", `limits: handshake_rate: want <per second> [<burst>] or off, at Caddyfile:3`},
		{"limits bad handshake burst", "socketio {\n\tlimits {\n\t\thandshake_rate 5 0\n\t}\n}", `limits: handshake_rate: burst: want a positive number, got "0", at Caddyfile:3`},
		{"limits repeated pending acks", "socketio {\n\tlimits {\n\t\tmax_pending_acks 3\n\t\tmax_pending_acks off\n\t}\n}", `limits: max_pending_acks: subdirective given twice, at Caddyfile:4`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := caddyfile.NewDispenser(tokensNamed(t, tc.input))
			err := new(Handler).UnmarshalCaddyfile(d)
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error %q shows the password", err)
			}
		})
	}
}

// tokensNamed tokenizes input as a file named "Caddyfile".
func tokensNamed(t *testing.T, input string) []caddyfile.Token {
	t.Helper()
	toks, err := caddyfile.Tokenize([]byte(input), "Caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	return toks
}

// TestCaddyfileErrorsThroughAdapter checks the same through a whole site, so
// the file name and line point into the real Caddyfile.
func TestCaddyfileErrorsThroughAdapter(t *testing.T) {
	input := ":8080 {\n\troot * www\n\tsocketio {\n\t\tnamespaces /\n\t\tnamespaces /a\n\t}\n}\n"
	_, err := adapt(input)
	if err == nil || !strings.Contains(err.Error(), "namespaces: subdirective given twice, at Caddyfile:5") {
		t.Fatalf("err = %v", err)
	}
}

// TestExampleIsTested keeps Caddyfile.example and its golden copy in step.
func TestExampleIsTested(t *testing.T) {
	example, err := os.ReadFile("Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	golden, err := os.ReadFile("testdata/example.caddyfiletest")
	if err != nil {
		t.Fatal(err)
	}
	input, _, _ := strings.Cut(string(golden), "\n----------\n")
	if strings.TrimSpace(input) != strings.TrimSpace(string(example)) {
		t.Fatal("testdata/example.caddyfiletest does not start with Caddyfile.example; copy it over and run go test -update")
	}
}

// TestCaddyfileEIO3CompressionErrors: allow_eio3 and the compression
// block fail with the file and line.
func TestCaddyfileEIO3CompressionErrors(t *testing.T) {
	for _, tc := range []struct{ name, input, want string }{
		{"allow_eio3 bad bool", "socketio {\n\tallow_eio3 sometimes\n}", `allow_eio3: want true or false, got "sometimes", at Caddyfile:2`},
		{"allow_eio3 two args", "socketio {\n\tallow_eio3 true false\n}", "at Caddyfile:2"},
		{"compression arg", "socketio {\n\tcompression on\n}", "at Caddyfile:2"},
		{"compression unknown", "socketio {\n\tcompression {\n\t\tbrotli on\n\t}\n}", `compression: unrecognized subdirective "brotli", at Caddyfile:3`},
		{"compression bad switch", "socketio {\n\tcompression {\n\t\twebsocket yes\n\t}\n}", `compression: websocket: want on or off, got "yes", at Caddyfile:3`},
		{"compression bad threshold", "socketio {\n\tcompression {\n\t\tthreshold big\n\t}\n}", `compression: threshold: invalid size "big", at Caddyfile:3`},
		{"compression huge threshold", "socketio {\n\tcompression {\n\t\tthreshold 2GiB\n\t}\n}", "at Caddyfile:3"},
		{"compression repeated", "socketio {\n\tcompression {\n\t\tpolling on\n\t\tpolling off\n\t}\n}", `compression: polling: subdirective given twice, at Caddyfile:4`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := new(Handler).UnmarshalCaddyfile(caddyfile.NewDispenser(tokensNamed(t, tc.input)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v does not contain %q", err, tc.want)
			}
		})
	}
	// The JSON path applies the same check.
	h := &Handler{Compression: &Compression{Threshold: -1}}
	if err := h.check(); err == nil || !strings.Contains(err.Error(), "compression: threshold") {
		t.Errorf("JSON threshold -1: %v", err)
	}
}

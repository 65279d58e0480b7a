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
	_ "github.com/caddyserver/caddy/v2/modules/standard"
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

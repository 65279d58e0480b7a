//go:build live

package examples

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddy-socketio/caddy-socketio/internal/testkit"
)

// exampleFiles are the Caddyfiles a user is told to run as they are.
var exampleFiles = []string{
	"Caddyfile.example",
	"examples/https/Caddyfile",
	"examples/emit-api/Caddyfile",
	"examples/backend/Caddyfile",
	"examples/cluster/Caddyfile",
	"examples/cluster/lb.Caddyfile",
}

// docFiles are the documents whose Caddyfile blocks must load as copied.
func docFiles(t *testing.T) []string {
	t.Helper()
	docs, err := filepath.Glob(filepath.Join(testkit.RepoRoot(t), "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	files := []string{"README.md"}
	for _, d := range docs {
		files = append(files, filepath.Join("docs", filepath.Base(d)))
	}
	return files
}

var (
	// needsLine is the line of an example naming the variables it needs.
	needsLine = regexp.MustCompile(`(?m)^# Needs: (.+)$`)
	// envRef is a runtime placeholder {env.NAME}; {$NAME:default} is read
	// at adapt time and always has a default in our examples.
	envRef = regexp.MustCompile(`\{env\.([A-Za-z_][A-Za-z0-9_]*)\}`)
	// adaptRef is an adapt-time variable without a default.
	adaptRef = regexp.MustCompile(`\{\$([A-Za-z_][A-Za-z0-9_]*)\}`)
	// fence finds fenced code blocks and their language.
	fence = regexp.MustCompile("(?ms)^```([a-z-]*)\n(.*?)^```\n")
)

// needs reads the "# Needs: A, B (why)" line of an example.
func needs(t *testing.T, name, cfg string) []string {
	t.Helper()
	m := needsLine.FindStringSubmatch(cfg)
	if m == nil {
		t.Fatalf("%s: no '# Needs:' line naming its environment variables", name)
	}
	var vars []string
	for _, f := range strings.Split(m[1], ",") {
		if v := strings.Fields(f); len(v) > 0 {
			vars = append(vars, v[0])
		}
	}
	return vars
}

// dummy gives each variable a value long enough for any secret check.
func dummy(vars []string) []string {
	var env []string
	for _, v := range vars {
		env = append(env, v+"=example-value-for-validation-0123456789abcdef")
	}
	return env
}

// validate runs `caddy validate` on cfg with only the given variables set.
func validate(t *testing.T, name, cfg string, vars []string) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	bin := testkit.CaddyBinary(t) // built before the timeout starts: the first call builds Caddy
	ctx, cancel := context.WithTimeout(context.Background(), validateTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "validate", "--config", path, "--adapter", "caddyfile")
	cmd.Dir = testkit.RepoRoot(t)
	cmd.Env = baseEnv(dir, dummy(vars)...)
	cmd.WaitDelay = 2 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("%s does not load with only %v set: %v\n%s", name, vars, err, lastLines(string(out), 5))
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TestExamplesValidate runs `caddy validate` on every example Caddyfile with
// only the variables its "# Needs:" line names, and checks that the line
// names every {env.*} the file uses and that it says how to try it.
func TestExamplesValidate(t *testing.T) {
	for _, name := range exampleFiles {
		t.Run(name, func(t *testing.T) {
			cfg := readFile(t, name)
			vars := needs(t, name, cfg)
			for _, m := range envRef.FindAllStringSubmatch(cfg, -1) {
				if !slices.Contains(vars, m[1]) {
					t.Errorf("%s uses {env.%s} but its Needs line does not name it", name, m[1])
				}
			}
			if m := adaptRef.FindString(cfg); m != "" {
				t.Errorf("%s uses %s without a default", name, m)
			}
			if !strings.Contains(cfg, "# Try it") {
				t.Errorf("%s has no '# Try it' line", name)
			}
			validate(t, name, cfg, vars)
		})
	}
}

// TestDocsCaddyfiles validates every ```caddyfile block of the README and
// docs/ as it is. A block's {env.*} variables are set, and each must be
// named in the document's text outside its code blocks too, so a reader
// learns that it is needed. Syntax summaries are fenced as caddy-d.
func TestDocsCaddyfiles(t *testing.T) {
	examples := map[string]string{}
	for _, name := range exampleFiles {
		examples[stripComments(readFile(t, name))] = name
	}
	for _, doc := range docFiles(t) {
		text := readFile(t, doc)
		prose := fence.ReplaceAllString(text, "")
		blocks := fence.FindAllStringSubmatch(text, -1)
		n := 0
		for _, b := range blocks {
			lang, body := b[1], b[2]
			if lang != "caddyfile" {
				if lang == "" && strings.Contains(body, "\t") && strings.Contains(body, "{\n") && !strings.Contains(body, "<") {
					t.Errorf("%s: a block without a language looks like a Caddyfile; fence it as caddyfile:\n%s", doc, body)
				}
				continue
			}
			n++
			name := fmt.Sprintf("%s#%d", doc, n)
			t.Run(name, func(t *testing.T) {
				if strings.Contains(body, "<") {
					t.Fatalf("%s has <placeholders>: fence it as caddy-d, or make it loadable", name)
				}
				var vars []string
				for _, m := range envRef.FindAllStringSubmatch(body, -1) {
					if !slices.Contains(vars, m[1]) {
						vars = append(vars, m[1])
					}
					if !strings.Contains(prose, m[1]) {
						t.Errorf("%s needs %s, which the text of %s never names", name, m[1], doc)
					}
				}
				validate(t, name, body, vars)
				// A block said to be an example file must be that file.
				if strings.Contains(paragraphBefore(text, b[0]), "without its comments") {
					if _, ok := examples[stripComments(body)]; !ok {
						t.Errorf("%s is said to be an example file without its comments, but matches none of %v", name, exampleFiles)
					}
				}
			})
		}
	}
}

// paragraphBefore returns the paragraph of text just before the fenced
// block.
func paragraphBefore(text, block string) string {
	i := strings.Index(text, block)
	if i < 0 {
		return ""
	}
	head := strings.TrimRight(text[:i], "\n")
	if j := strings.LastIndex(head, "\n\n"); j >= 0 {
		return head[j:]
	}
	return head
}

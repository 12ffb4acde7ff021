package main

import (
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/google/uuid"
)

// cliOrg starts hookd on a new SQLite file and gives the CLI and an API
// caller of a new organization, and the organization's API path.
func cliOrg(t *testing.T) (cli, call, string) {
	t.Helper()
	dbURL := "sqlite:" + filepath.Join(t.TempDir(), "hookd.db")
	srv := startServer(t, deliveryEnv(dbURL, nil))
	orgID := uuid.New()
	token := newToken(t, dbURL, orgID)
	return newCLI(t, srv, orgID, token), call{t: t, base: srv.URL, auth: "Token " + token}, "/organization/" + orgID.String()
}

// Whoever holds a token of an organization writes its webhooks'
// descriptions and project filters and its sources' names; whoever lists
// them with hookd reads them in a terminal. A control character among
// them would be the terminal's command, not text: an escape sequence can
// erase the lines above (an audit entry, a webhook), retitle the window
// or, in some terminals, write the clipboard. A bidirectional override
// (U+202E) makes a terminal that lays out right-to-left text show the
// rest of the line in reverse, the next columns included.
func TestClientPrintsNoControlCharacters(t *testing.T) {
	c, api, org := cliOrg(t)
	tg := newTarget(t)
	const esc = "\x1b[1A\x1b[2K\x1b]0;owned\x07\u009b2K\x7f\u202e\u2066"

	var w webhookJSON
	if st, _, body := api.do("POST", org+"/webhook", map[string]any{
		"kind": "STANDARD", "target_url": tg.URL + "/x", "events": []string{"DEPLOYMENT_STARTED"},
		"description": "deploys" + esc, "project_names_filter": []string{"api" + esc},
	}, &w); st != 201 {
		t.Fatalf("create webhook: %d %s", st, body)
	}
	if st, _, body := api.do("POST", org+"/source", map[string]any{
		"kind": "FLUX", "name": "flux" + esc, "secret": strings.Repeat("s", 32),
		"environment_types": []map[string]string{{"pattern": "prod" + esc, "type": "PRODUCTION"}},
	}, nil); st != 201 {
		t.Fatalf("create source: %d %s", st, body)
	}
	for _, args := range [][]string{
		{"webhook", "list"}, {"webhook", "get", w.ID}, {"source", "list"}, {"audit"},
	} {
		out := c.run(args...)
		if i := strings.IndexFunc(out, func(r rune) bool {
			return r < ' ' && r != '\n' && r != '\t' || r >= 0x7f && r < 0xa0 || unicode.Is(unicode.Bidi_Control, r)
		}); i >= 0 {
			t.Errorf("hookd %s printed a control character (%U at %d): %q", strings.Join(args, " "), []rune(out[i:])[0], i, out)
		}
	}
}

// A line break or tab in a name, a filter or a pattern is text of its
// cell too: printed as such, it would start a row of its own (an audit
// entry that never happened, a "Secret: set" under a webhook) or shift
// the columns after it.
func TestClientPrintsOneLinePerRow(t *testing.T) {
	c, api, org := cliOrg(t)
	tg := newTarget(t)

	var w webhookJSON
	if st, _, body := api.do("POST", org+"/webhook", map[string]any{
		"kind": "STANDARD", "target_url": tg.URL + "/x", "events": []string{"DEPLOYMENT_STARTED"},
		"project_names_filter": []string{"api\r\nforged"},
	}, &w); st != 201 {
		t.Fatalf("create webhook: %d %s", st, body)
	}
	var src struct{ ID string }
	if st, _, body := api.do("POST", org+"/source", map[string]any{
		"kind": "FLUX", "name": "flux\nforged", "secret": strings.Repeat("s", 32),
		"environment_types": []map[string]string{{"pattern": "prod\tx\nforged", "type": "PRODUCTION"}},
	}, &src); st != 201 {
		t.Fatalf("create source: %d %s", st, body)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"webhook", "get", w.ID}, "api forged"},
		{[]string{"source", "list"}, "flux forged"},
		{[]string{"source", "list"}, "prod x forged"},
		{[]string{"source", "get", src.ID}, "prod x forged"},
		{[]string{"audit"}, "flux forged"},
	} {
		out := c.run(tc.args...)
		if !strings.Contains(out, tc.want) {
			t.Errorf("hookd %s: want %q on one line, got:\n%s", strings.Join(tc.args, " "), tc.want, out)
		}
	}
}

// A target's answer is the target's text, and --json is how an operator
// reads it in a terminal. JSON escapes C0 control characters but not C1
// ones (U+009B is CSI, U+009D OSC to a terminal that reads UTF-8) nor
// bidirectional controls: --json prints them escaped, the same JSON.
func TestClientJSONPrintsNoControlCharacters(t *testing.T) {
	c, api, org := cliOrg(t)
	const answer = "ok\u009b2J\u009d0;owned\u009c\u202erevo\u2066\x7f"
	tg := newTargetFunc(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, answer) })

	var w webhookJSON
	if st, _, body := api.do("POST", org+"/webhook", map[string]any{
		"kind": "STANDARD", "target_url": tg + "/x", "events": []string{"DEPLOYMENT_STARTED"}, "description": answer,
	}, &w); st != 201 {
		t.Fatalf("create webhook: %d %s", st, body)
	}
	c.run("emit", "--event-type", "DEPLOYMENT_STARTED", "--project", "api", "--environment", "prod", "--mode", "PRODUCTION")
	events := org + "/webhook/" + w.ID + "/event"
	waitFor(t, 30*time.Second, "the attempt to be logged", func() bool {
		_, _, body := api.do("GET", events, nil, nil)
		return strings.Contains(string(body), "revo")
	})
	_, _, apiEvents := api.do("GET", events, nil, nil)
	for _, args := range [][]string{{"webhook", "events", "--json", w.ID}, {"webhook", "get", "--json", w.ID}} {
		out := c.run(args...)
		if i := strings.IndexFunc(out, func(r rune) bool {
			return unicode.IsControl(r) && r != '\n' || unicode.Is(unicode.Bidi_Control, r)
		}); i >= 0 {
			t.Errorf("hookd %s printed a control character (%U at %d): %q", strings.Join(args, " "), []rune(out[i:])[0], i, out)
		}
		if args[1] == "events" {
			jsonEqual(t, "events --json", []byte(out), apiEvents)
		}
	}
}

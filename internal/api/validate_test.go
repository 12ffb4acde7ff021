package api

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// TestRefusedAtTheDoor sends what can never work, and checks both
// backends refuse it alike: 400 with a detail naming the field, and
// nothing stored.
func TestRefusedAtTheDoor(t *testing.T) {
	whsec := func(n int) string { return "whsec_" + base64.StdEncoding.EncodeToString(make([]byte, n)) }
	const hook = `"kind":"STANDARD","events":["DEPLOYMENT_STARTED"]`
	const url = `"target_url":"https://example.com/h"`
	webhooks := []struct {
		name, body, field string
	}{
		{"NUL in description", `{` + hook + `,` + url + `,"description":"a\u0000b"}`, "description"},
		{"NUL in a project filter", `{` + hook + `,` + url + `,"project_names_filter":["web\u0000"]}`, "project_names_filter"},
		{"CR LF in the secret", `{` + hook + `,` + url + `,"target_secret":"s\r\nX-Evil: 1"}`, "target_secret"},
		{"NUL in the secret", `{` + hook + `,` + url + `,"target_secret":"s\u0000"}`, "target_secret"},
		{"whsec not base64", `{` + hook + `,` + url + `,"target_secret":"whsec_not base64"}`, "target_secret"},
		{"whsec of 16 bytes", `{` + hook + `,` + url + `,"target_secret":"` + whsec(16) + `"}`, "target_secret"},
		{"port 99999", `{` + hook + `,"target_url":"https://example.com:99999/h"}`, "target_url"},
	}
	const event = `"event_type":"DEPLOYMENT_STARTED","environment":{"name":"e","mode":"STAGING"}`
	events := []struct {
		name, body, field string
	}{
		{"NUL in project.name", `{` + event + `,"project":{"name":"p\u0000"}}`, "project.name"},
		{"invalid UTF-8 in applications", `{` + event + `,"project":{"name":"p"},"applications":["a` + "\xff" + `"]}`, "applications"},
		{"NUL in logs", `{` + event + `,"project":{"name":"p"},"logs":["l\u0000"]}`, "logs"},
		{"jobs 33 deep", `{` + event + `,"project":{"name":"p"},"jobs":` + strings.Repeat(`[{"a":`, 16) + `[]` + strings.Repeat(`}]`, 16) + `}`, "jobs"},
	}
	onBothBackends(t, func(t *testing.T, h *apiHarness) {
		org := uuid.New()
		tok, _ := h.token(org)
		base := "/organization/" + org.String()
		var body struct{ Detail string }
		for _, tt := range webhooks {
			if st := h.do(tok, "POST", base+"/webhook", tt.body, &body); st != 400 || !strings.HasPrefix(body.Detail, tt.field+": ") {
				t.Errorf("create, %s: %d %q, want 400 naming %s", tt.name, st, body.Detail, tt.field)
			}
		}
		var list struct{ Results []any }
		if h.do(tok, "GET", base+"/webhook", "", &list); len(list.Results) != 0 {
			t.Fatalf("refused creates stored %d webhooks", len(list.Results))
		}
		if st := h.do(tok, "POST", base+"/webhook", `{`+hook+`,`+url+`,"target_secret":"`+whsec(32)+`"}`, nil); st != 201 {
			t.Fatalf("create with a 32-byte whsec_ secret: %d", st)
		}
		for _, tt := range events {
			if st := h.do(tok, "POST", base+"/deployment-event", tt.body, &body); st != 400 || !strings.HasPrefix(body.Detail, tt.field+": ") {
				t.Errorf("intake, %s: %d %q, want 400 naming %s", tt.name, st, body.Detail, tt.field)
			}
		}
		st, _ := h.doWith(tok, "POST", base+"/deployment-event", `{`+event+`,"project":{"name":"p"}}`,
			http.Header{"Idempotency-Key": {"k\xff"}}, &body)
		if st != 400 || !strings.HasPrefix(body.Detail, "Idempotency-Key: ") {
			t.Errorf("intake with an invalid UTF-8 Idempotency-Key: %d %q", st, body.Detail)
		}
	})
}

// A body the endpoint cannot read is refused with a detail that says
// what is wrong, and where when the decoder knows.
func TestDecodeErrors(t *testing.T) {
	for _, c := range []struct{ body, want string }{
		{``, "the request body is empty: send a JSON object"},
		{`[]`, "the request body must be a JSON object, not array"},
		{`{"kind":5}`, "kind: must be a string, not number"},
		{`{"events":{}}`, "events: must be an array, not object"},
		{`{"enabled":"yes"}`, "enabled: must be a boolean, not string"},
		{`{"kind":`, "malformed JSON at byte 8: unexpected end of JSON input"},
		{`{"kind" 1}`, "malformed JSON at byte 9: invalid character '1' after object key"},
	} {
		var v struct {
			Kind    string   `json:"kind"`
			Events  []string `json:"events"`
			Enabled bool     `json:"enabled"`
		}
		err := decode(httptest.NewRecorder(), httptest.NewRequest("POST", "/", strings.NewReader(c.body)), &v)
		if err == nil || err.Error() != c.want {
			t.Errorf("body %q: %v, want %q", c.body, err, c.want)
		}
	}
}

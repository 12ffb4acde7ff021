package webhook

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

var (
	testOrg     = uuid.MustParse("0190a6d2-0000-7000-8000-000000000001")
	testEventID = uuid.MustParse("0190a6d2-0000-7000-8000-0000000000e1")
	testNow     = time.Date(2024, 7, 1, 12, 30, 45, 123456000, time.UTC)
)

func validDeployment() *DeploymentEvent {
	return &DeploymentEvent{
		EventType:     EventDeploymentFailure,
		DeploymentID:  "dep-42",
		CurrentStatus: "DEPLOYMENT_ERROR",
		DesiredStatus: "RUNNING",
		Project:       DeploymentProject{ID: "p-1", Name: "billing-api"},
		Environment:   DeploymentEnvironment{ID: "e-1", Name: "prod-eu", Mode: ModeProduction, ClusterName: "eu-west-3"},
	}
}

// nested is n arrays and objects in turn around leaf, as a list.
func nested(n int, leaf string) json.RawMessage {
	var open, close strings.Builder
	for i := range n {
		if i%2 == 0 {
			open.WriteString(`[`)
			close.WriteString(`]`)
		} else {
			open.WriteString(`{"k":`)
			close.WriteString(`}`)
		}
	}
	c := []byte(close.String())
	slices.Reverse(c)
	return json.RawMessage(open.String() + leaf + string(c))
}

func TestDeploymentEventValidate(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(d *DeploymentEvent)
		field string // "" when valid
	}{
		{"valid", func(d *DeploymentEvent) {}, ""},
		{"valid with lists", func(d *DeploymentEvent) {
			d.Applications = json.RawMessage(` [{"id":"a"}] `)
			d.Logs = json.RawMessage(`null`)
		}, ""},
		{"no event type", func(d *DeploymentEvent) { d.EventType = "" }, "event_type"},
		{"unknown event type", func(d *DeploymentEvent) { d.EventType = "DEPLOYMENT_EXPLODED" }, "event_type"},
		{"no project name", func(d *DeploymentEvent) { d.Project.Name = "" }, "project.name"},
		{"blank project name", func(d *DeploymentEvent) { d.Project.Name = "  " }, "project.name"},
		{"no environment name", func(d *DeploymentEvent) { d.Environment.Name = "" }, "environment.name"},
		{"no environment mode", func(d *DeploymentEvent) { d.Environment.Mode = "" }, "environment.mode"},
		{"unknown environment mode", func(d *DeploymentEvent) { d.Environment.Mode = "prod" }, "environment.mode"},
		{"applications object", func(d *DeploymentEvent) { d.Applications = json.RawMessage(`{"id":"a"}`) }, "applications"},
		{"databases string", func(d *DeploymentEvent) { d.Databases = json.RawMessage(`"x"`) }, "databases"},
		{"containers number", func(d *DeploymentEvent) { d.Containers = json.RawMessage(`1`) }, "containers"},
		{"jobs broken", func(d *DeploymentEvent) { d.Jobs = json.RawMessage(`[1,`) }, "jobs"},
		{"logs true", func(d *DeploymentEvent) { d.Logs = json.RawMessage(`true`) }, "logs"},
		{"NUL in project name", func(d *DeploymentEvent) { d.Project.Name = "a\x00b" }, "project.name"},
		{"NUL in deployment id", func(d *DeploymentEvent) { d.DeploymentID = "\x00" }, "deployment_id"},
		{"invalid UTF-8 in cluster name", func(d *DeploymentEvent) { d.Environment.ClusterName = "eu\xff" }, "environment.cluster_name"},
		{"invalid UTF-8 in applications", func(d *DeploymentEvent) { d.Applications = json.RawMessage("[\"a\xffb\"]") }, "applications"},
		{"NUL escape in logs", func(d *DeploymentEvent) { d.Logs = json.RawMessage(`["line\u0000"]`) }, "logs"},
		{"escaped backslash before u0000 is text", func(d *DeploymentEvent) { d.Logs = json.RawMessage(`["C:\\u0000"]`) }, ""},
		{"NUL escape after an escaped backslash", func(d *DeploymentEvent) { d.Jobs = json.RawMessage(`["\\\u0000"]`) }, "jobs"},
		// Nesting counts arrays and objects, the list itself included, not
		// brackets in strings, escaped quotes or not.
		{"lists 32 deep", func(d *DeploymentEvent) { d.Jobs = nested(MaxListDepth, `"[[{\\\"["`) }, ""},
		{"lists 33 deep", func(d *DeploymentEvent) { d.Jobs = nested(MaxListDepth+1, `1`) }, "jobs"},
		{"40 entries, each a list, two deep", func(d *DeploymentEvent) {
			d.Jobs = json.RawMessage("[" + strings.Repeat(`[{"id":1}],`, 39) + "[]]")
		}, ""},
		{"40 brackets in a string, one list deep", func(d *DeploymentEvent) { d.Logs = json.RawMessage(`["` + strings.Repeat("[", 40) + `"]`) }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := validDeployment()
			tt.edit(d)
			err := d.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			e, ok := err.(*Error)
			if !ok {
				t.Fatalf("Validate = %v, want *Error", err)
			}
			if e.Code != EInvalid || e.Field != tt.field || !strings.HasPrefix(e.Message, tt.field+": ") {
				t.Errorf("Validate = %+v, want an invalid error on %s", e, tt.field)
			}
		})
	}
}

func TestDeploymentEventDecode(t *testing.T) {
	body := `{"event_type":"DEPLOYMENT_STARTED","project":{"name":"api"},
		"environment":{"name":"dev","mode":"DEVELOPMENT"},"applications":[{"x":1}]}`
	var d DeploymentEvent
	if err := json.Unmarshal([]byte(body), &d); err != nil {
		t.Fatal(err)
	}
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	if d.EventType != EventDeploymentStarted || d.Project.Name != "api" || d.Environment.Mode != ModeDevelopment {
		t.Errorf("decoded %+v", d)
	}
}

func TestNewEvent(t *testing.T) {
	d := validDeployment()
	d.Applications = json.RawMessage(`[{"id":"a1","name":"web","nested":{"deep":[1,2.5,"x",null,true,{"k":"v"}]},"unicode":"héllo \u2603 🚀"}]`)
	d.Databases = json.RawMessage(`null`)
	d.Jobs = json.RawMessage("[\n  1,\n  2\n]")

	ev := NewEvent(testOrg, d, testEventID, testNow, "")
	if ev.ID != testEventID || ev.OrganizationID != testOrg || !ev.CreatedAt.Equal(testNow) ||
		ev.Type != EventDeploymentFailure || ev.ProjectName != "billing-api" || ev.EnvironmentMode != ModeProduction {
		t.Errorf("event fields: %+v", ev)
	}
	var got map[string]any
	if err := json.Unmarshal(ev.Payload, &got); err != nil {
		t.Fatalf("payload is not JSON: %v\n%s", err, ev.Payload)
	}
	var apps any
	if err := json.Unmarshal(d.Applications, &apps); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"id":             "dep-42",
		"deployment_id":  "dep-42",
		"current_status": "DEPLOYMENT_ERROR",
		"desired_status": "RUNNING",
		"organization":   map[string]any{"id": testOrg.String()},
		"project":        map[string]any{"id": "p-1", "name": "billing-api"},
		"environment":    map[string]any{"id": "e-1", "name": "prod-eu", "mode": "PRODUCTION", "cluster_name": "eu-west-3"},
		"applications":   apps,
		"databases":      []any{},
		"containers":     []any{},
		"jobs":           []any{1.0, 2.0},
		"logs":           []any{},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("payload = %s\nwant %v", ev.Payload, want)
	}
}

func TestNewEventDefaults(t *testing.T) {
	d := &DeploymentEvent{
		EventType:   EventDeploymentStarted,
		Project:     DeploymentProject{Name: "api"},
		Environment: DeploymentEnvironment{Name: "dev", Mode: ModeDevelopment},
		Logs:        json.RawMessage(`{"not":"an array"}`), // not validated: sent as []
	}
	ev := NewEvent(testOrg, d, testEventID, testNow, "")
	var p map[string]json.RawMessage
	if err := json.Unmarshal(ev.Payload, &p); err != nil {
		t.Fatal(err)
	}
	var id, deploymentID string
	json.Unmarshal(p["id"], &id)
	json.Unmarshal(p["deployment_id"], &deploymentID)
	if _, err := uuid.Parse(id); err != nil || id != deploymentID {
		t.Errorf("id = %q, deployment_id = %q, want the same new UUID", id, deploymentID)
	}
	for key, want := range map[string]string{
		"current_status": `""`,
		"desired_status": `""`,
		"project":        `{"id":"","name":"api"}`,
		"environment":    `{"id":"","name":"dev","mode":"DEVELOPMENT","cluster_name":""}`,
		"applications":   `[]`,
		"databases":      `[]`,
		"containers":     `[]`,
		"jobs":           `[]`,
		"logs":           `[]`,
	} {
		if string(p[key]) != want {
			t.Errorf("%s = %s, want %s", key, p[key], want)
		}
	}
	if len(p) != 12 {
		t.Errorf("payload has %d keys, want 12: %s", len(p), ev.Payload)
	}
	other := NewEvent(testOrg, d, testEventID, testNow, "")
	if bytes.Equal(other.Payload, ev.Payload) {
		t.Error("two events without a deployment id got the same one")
	}
}

func TestRenderStandard(t *testing.T) {
	d := validDeployment()
	d.Applications = json.RawMessage(`[{"id":"a1","cfg":{"a":[{"b":{"c":"\"quoted\" \\ </script>"}}]}}]`)
	ev := NewEvent(testOrg, d, testEventID, testNow.In(time.FixedZone("CEST", 2*3600)), "")

	body := RenderStandard(ev)
	var env map[string]json.RawMessage
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatalf("envelope is not JSON: %v\n%s", err, body)
	}
	want := map[string]string{
		"created_at":   `"2024-07-01T12:30:45.123456Z"`,
		"event_type":   `"DEPLOYMENT_FAILURE"`,
		"payload_type": `"DEPLOYMENT"`,
		"payload_id":   `"` + testEventID.String() + `"`,
		"payload":      string(ev.Payload),
	}
	if len(env) != len(want) {
		t.Errorf("envelope keys: %s", body)
	}
	for k, v := range want {
		if string(env[k]) != v {
			t.Errorf("%s = %s, want %s", k, env[k], v)
		}
	}
	// Verbatim: the stored bytes appear unchanged, whitespace included.
	ev.Payload = json.RawMessage("{ \"id\" : \"x\",\n\t\"applications\": [ {\"k\": [1, {\"deep\": null}]} ] }")
	body = RenderStandard(ev)
	if !bytes.HasSuffix(body, append([]byte(`,"payload":`), append(ev.Payload, '}')...)) {
		t.Errorf("payload not spliced verbatim: %s", body)
	}
	if !json.Valid(body) {
		t.Errorf("invalid JSON: %s", body)
	}
}

func TestRenderStandardTimes(t *testing.T) {
	ev := &Event{ID: testEventID, Type: EventDeploymentStarted, Payload: json.RawMessage(`{}`)}
	for _, tt := range []struct {
		at   time.Time
		want string
	}{
		{time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC), "2024-01-02T03:04:05Z"},
		{time.Date(2024, 1, 2, 3, 4, 5, 500000000, time.UTC), "2024-01-02T03:04:05.5Z"},
		{time.Date(2024, 1, 2, 5, 4, 5, 1000, time.FixedZone("", 2*3600)), "2024-01-02T03:04:05.000001Z"},
	} {
		ev.CreatedAt = tt.at
		var env struct {
			CreatedAt string `json:"created_at"`
		}
		if err := json.Unmarshal(RenderStandard(ev), &env); err != nil {
			t.Fatal(err)
		}
		if env.CreatedAt != tt.want {
			t.Errorf("created_at = %s, want %s", env.CreatedAt, tt.want)
		}
	}
}

// The envelope stays valid JSON whatever strings it carries.
func TestRenderStandardStrings(t *testing.T) {
	for _, s := range jsonStringCases {
		d := validDeployment()
		d.Project.Name, d.Environment.Name, d.DeploymentID, d.CurrentStatus = s, s, s, s
		d.Applications = json.RawMessage(`[` + string(appendJSONString(nil, s)) + `]`)
		ev := NewEvent(testOrg, d, testEventID, testNow, "")
		ev.Type = EventType(s) // never stored, but the renderer must not break on it
		body := RenderStandard(ev)
		var env struct {
			EventType string `json:"event_type"`
			Payload   struct {
				Project DeploymentProject `json:"project"`
			} `json:"payload"`
		}
		if err := json.Unmarshal(body, &env); err != nil {
			t.Fatalf("%q: %v\n%s", s, err, body)
		}
		var want string // as encoding/json would carry it (bad UTF-8 replaced)
		std, _ := json.Marshal(s)
		json.Unmarshal(std, &want)
		if env.EventType != want || env.Payload.Project.Name != want {
			t.Errorf("%q came back as %q and %q", s, env.EventType, env.Payload.Project.Name)
		}
		if !json.Valid(RenderSlack(ev)) {
			t.Errorf("%q: Slack message is not valid JSON", s)
		}
	}
}

var jsonStringCases = []string{
	"",
	"plain",
	`"quoted" and \backslash\ and \"both\"`,
	"line\nbreak\r\ttab\b\f",
	"\x00\x01\x1f\x7f",
	"héllo wörld ☃ 🚀 日本語",
	"\u2028\u2029",
	"</script><!-- & -->",
	"invalid \xff\xfe utf-8 \xe2\x82",
	`\u0000`,
}

func TestAppendJSONString(t *testing.T) {
	for _, s := range jsonStringCases {
		checkJSONString(t, s)
	}
	for c := 0; c < 256; c++ {
		checkJSONString(t, "a"+string([]byte{byte(c)})+"b")
	}
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range jsonStringCases {
		f.Add(s)
	}
	f.Fuzz(checkJSONString)
}

func checkJSONString(t *testing.T, s string) {
	t.Helper()
	b := appendJSONString([]byte("x"), s)
	if b[0] != 'x' {
		t.Fatal("prefix lost")
	}
	var got string
	if err := json.Unmarshal(b[1:], &got); err != nil {
		t.Fatalf("%q: %s is not a JSON string: %v", s, b[1:], err)
	}
	if utf8.ValidString(s) && got != s {
		t.Fatalf("%q came back as %q", s, got)
	}
	// encoding/json decodes to the same string (it too replaces bad UTF-8).
	std, _ := json.Marshal(s)
	var want string
	json.Unmarshal(std, &want)
	if got != want {
		t.Fatalf("%q: got %q, encoding/json gives %q", s, got, want)
	}
}

func TestRenderSlack(t *testing.T) {
	d := validDeployment()
	ev := NewEvent(testOrg, d, testEventID, testNow, "")
	msg := decodeSlack(t, RenderSlack(ev))

	wantText := ":x: Deployment failed — project billing-api, environment prod-eu (PRODUCTION)"
	if msg.Text != wantText {
		t.Errorf("text = %q, want %q", msg.Text, wantText)
	}
	if len(msg.Blocks) != 3 || msg.Blocks[0].Type != "header" || msg.Blocks[1].Type != "section" || msg.Blocks[2].Type != "context" {
		t.Fatalf("blocks: %+v", msg.Blocks)
	}
	if h := msg.Blocks[0].Text; h == nil || h.Type != "plain_text" || h.Text != ":x: Deployment failed" {
		t.Errorf("header: %+v", h)
	}
	var fields []string
	for _, f := range msg.Blocks[1].Fields {
		if f.Type != "mrkdwn" {
			t.Errorf("field type %q", f.Type)
		}
		// Values are the event's, not ours: Slack must not turn a URL or
		// a channel's name in one into a link, or "@here" into a mention.
		if !f.Verbatim {
			t.Errorf("field %q is not verbatim", f.Text)
		}
		fields = append(fields, f.Text)
	}
	wantFields := []string{
		"*Project*\nbilling-api",
		"*Environment*\nprod-eu (PRODUCTION)",
		"*Deployment id*\n`dep-42`",
		"*Status*\nDEPLOYMENT_ERROR → RUNNING",
		"*Cluster*\neu-west-3",
	}
	if !reflect.DeepEqual(fields, wantFields) {
		t.Errorf("fields = %q\nwant %q", fields, wantFields)
	}
	ctx := msg.Blocks[2].Elements
	if len(ctx) != 1 || !strings.Contains(ctx[0].Text, "<!date^1719837045^") || !strings.Contains(ctx[0].Text, "|2024-07-01T12:30:45Z>") {
		t.Errorf("context: %+v", ctx)
	}
}

func TestRenderSlackEventTypes(t *testing.T) {
	for typ, want := range map[EventType]string{
		EventDeploymentStarted:    ":rocket: Deployment started",
		EventDeploymentSuccessful: ":white_check_mark: Deployment successful",
		EventDeploymentFailure:    ":x: Deployment failed",
		EventDeploymentCancelled:  ":no_entry_sign: Deployment cancelled",
	} {
		d := validDeployment()
		d.EventType = typ
		msg := decodeSlack(t, RenderSlack(NewEvent(testOrg, d, testEventID, testNow, "")))
		if msg.Blocks[0].Text.Text != want || !strings.HasPrefix(msg.Text, want+" — ") {
			t.Errorf("%s: header %q, text %q", typ, msg.Blocks[0].Text.Text, msg.Text)
		}
	}
}

func TestRenderSlackEscaping(t *testing.T) {
	d := validDeployment()
	d.Project.Name = "<!channel> & <https://evil.example|click>"
	d.Environment.Name = "a>b\nsecond line"
	d.DeploymentID = ""
	d.CurrentStatus = ""
	d.DesiredStatus = "RUNNING"
	d.Environment.ClusterName = ""
	ev := NewEvent(testOrg, d, testEventID, testNow, "")
	// The id NewEvent made up is shown; drop it to test an absent one.
	ev.Payload = bytes.Replace(ev.Payload, []byte(`"deployment_id":"`), []byte(`"deployment_id":"","x":"`), 1)
	msg := decodeSlack(t, RenderSlack(ev))

	wantProject := "&lt;!channel&gt; &amp; &lt;https://evil.example|click&gt;"
	wantText := ":x: Deployment failed — project " + wantProject + ", environment a&gt;b second line (PRODUCTION)"
	if msg.Text != wantText {
		t.Errorf("text = %q\nwant %q", msg.Text, wantText)
	}
	var fields []string
	for _, f := range msg.Blocks[1].Fields {
		fields = append(fields, f.Text)
	}
	wantFields := []string{
		"*Project*\n" + wantProject,
		"*Environment*\na&gt;b second line (PRODUCTION)",
		"*Status*\nRUNNING",
	}
	if !reflect.DeepEqual(fields, wantFields) {
		t.Errorf("fields = %q\nwant %q", fields, wantFields)
	}
}

// Slack's mrkdwn has no escape for a backtick: one in the deployment id
// would end its code span early and show the rest as mrkdwn (*bold*,
// _italic_). Inside the span *, _ and ~ are shown as they are.
func TestRenderSlackCodeSpan(t *testing.T) {
	d := validDeployment()
	d.DeploymentID = "dep`42 *not bold* _not italic_ ~not struck~ ``<x>``"
	msg := decodeSlack(t, RenderSlack(NewEvent(testOrg, d, testEventID, testNow, "")))
	want := "*Deployment id*\n`depˋ42 *not bold* _not italic_ ~not struck~ ˋˋ&lt;x&gt;ˋˋ`"
	if got := msg.Blocks[1].Fields[2].Text; got != want {
		t.Errorf("deployment id field = %q\nwant %q", got, want)
	}
}

// Every value at its longest, each character escaped to five: no field
// passes Slack's 2,000, the status (two values in one field) included.
func TestRenderSlackLongValues(t *testing.T) {
	d := validDeployment()
	long := strings.Repeat("&", 5000)
	d.Project.Name, d.Environment.Name, d.Environment.ClusterName = long, long, long
	d.DeploymentID, d.CurrentStatus, d.DesiredStatus = long, long, long+"x"
	msg := decodeSlack(t, RenderSlack(NewEvent(testOrg, d, testEventID, testNow, "")))
	for _, f := range msg.Blocks[1].Fields {
		if n := utf8.RuneCountInString(f.Text); n > 2000 {
			t.Errorf("field of %d characters exceeds Slack's limit", n)
		}
	}
}

// A value is cut at maxSlackValue characters, not bytes, the last one
// an ellipsis, and only when it is longer: a project name of exactly that
// many characters is shown whole.
func TestRenderSlackCut(t *testing.T) {
	for _, tc := range []struct {
		name, want string
	}{
		{strings.Repeat("é", maxSlackValue), strings.Repeat("é", maxSlackValue)},
		{strings.Repeat("é", maxSlackValue+1), strings.Repeat("é", maxSlackValue-1) + "…"},
		{strings.Repeat("é", maxSlackValue-1) + "&<", strings.Repeat("é", maxSlackValue-1) + "…"},
		{strings.Repeat("é", maxSlackValue-2) + "&", strings.Repeat("é", maxSlackValue-2) + "&amp;"},
	} {
		d := validDeployment()
		d.Project.Name = tc.name
		msg := decodeSlack(t, RenderSlack(NewEvent(testOrg, d, testEventID, testNow, "")))
		if got, want := msg.Blocks[1].Fields[0].Text, "*Project*\n"+tc.want; got != want {
			t.Errorf("a project name of %d characters is shown as %q (%d characters), want %d", utf8.RuneCountInString(tc.name),
				got, utf8.RuneCountInString(got), utf8.RuneCountInString(want))
		}
	}
}

func TestRenderSlackUnreadablePayload(t *testing.T) {
	ev := &Event{ID: testEventID, CreatedAt: testNow, Type: EventDeploymentStarted,
		ProjectName: "api", EnvironmentMode: ModeStaging, Payload: json.RawMessage(`not json`)}
	msg := decodeSlack(t, RenderSlack(ev))
	if !strings.Contains(msg.Text, "project api") || !strings.Contains(msg.Text, "(STAGING)") {
		t.Errorf("text = %q", msg.Text)
	}
}

func TestRender(t *testing.T) {
	ev := NewEvent(testOrg, validDeployment(), testEventID, testNow, "")
	if !bytes.Equal(Render(KindStandard, ev), RenderStandard(ev)) {
		t.Error("Render(STANDARD) differs from RenderStandard")
	}
	if !bytes.Equal(Render(KindSlack, ev), RenderSlack(ev)) {
		t.Error("Render(SLACK) differs from RenderSlack")
	}
}

func decodeSlack(t *testing.T, b []byte) slackMessage {
	t.Helper()
	var msg slackMessage
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&msg); err != nil {
		t.Fatalf("Slack message: %v\n%s", err, b)
	}
	return msg
}

func BenchmarkNewEventRenderStandard(b *testing.B) {
	d := validDeployment()
	d.Applications = json.RawMessage(`[{"id":"a1","name":"web","commit_id":"abc123","status":"RUNNING"}]`)
	b.ReportAllocs()
	for b.Loop() {
		ev := NewEvent(testOrg, d, testEventID, testNow, "")
		RenderStandard(ev)
	}
}

package webhook

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// DeploymentEvent is the body of an intake request: one deployment event
// as the organization reports it. The lists of services are opaque to
// hookd and passed on verbatim.
type DeploymentEvent struct {
	EventType     EventType             `json:"event_type"`
	DeploymentID  string                `json:"deployment_id"`
	CurrentStatus string                `json:"current_status"`
	DesiredStatus string                `json:"desired_status"`
	Project       DeploymentProject     `json:"project"`
	Environment   DeploymentEnvironment `json:"environment"`
	Applications  json.RawMessage       `json:"applications"`
	Databases     json.RawMessage       `json:"databases"`
	Containers    json.RawMessage       `json:"containers"`
	Jobs          json.RawMessage       `json:"jobs"`
	Logs          json.RawMessage       `json:"logs"`
}

// DeploymentProject is the project a deployment belongs to.
type DeploymentProject struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// DeploymentEnvironment is the environment a deployment runs in.
type DeploymentEnvironment struct {
	ID          string          `json:"id"`
	Name        string          `json:"name"`
	Mode        EnvironmentMode `json:"mode"`
	ClusterName string          `json:"cluster_name"`
}

// Validate reports the first thing wrong with the event, naming its field.
func (d *DeploymentEvent) Validate() error {
	if d.EventType == "" {
		return Invalid("event_type", "is required (one of %s)", join(EventTypes))
	}
	if !slices.Contains(EventTypes, d.EventType) {
		return Invalid("event_type", "must be one of %s, not %q", join(EventTypes), d.EventType)
	}
	if strings.TrimSpace(d.Project.Name) == "" {
		return Invalid("project.name", "is required")
	}
	if strings.TrimSpace(d.Environment.Name) == "" {
		return Invalid("environment.name", "is required")
	}
	if d.Environment.Mode == "" {
		return Invalid("environment.mode", "is required (one of %s)", join(EnvironmentModes))
	}
	if !slices.Contains(EnvironmentModes, d.Environment.Mode) {
		return Invalid("environment.mode", "must be one of %s, not %q", join(EnvironmentModes), d.Environment.Mode)
	}
	for _, f := range d.texts() {
		if err := ValidText(f.field, *f.s); err != nil {
			return err
		}
	}
	for _, l := range d.lists() {
		raw, ok := jsonArray(*l.raw)
		if !ok {
			return Invalid(l.field, "must be a JSON array")
		}
		if !utf8.Valid(raw) {
			return Invalid(l.field, "must be valid UTF-8")
		}
		if jsonHasNUL(raw) {
			return Invalid(l.field, "must not contain a NUL character (\\u0000)")
		}
	}
	return nil
}

type namedText struct {
	field string
	s     *string
}

// texts lists the event's string fields the payload carries; event_type
// and environment.mode are checked against their lists instead.
func (d *DeploymentEvent) texts() [8]namedText {
	return [8]namedText{
		{"deployment_id", &d.DeploymentID},
		{"current_status", &d.CurrentStatus},
		{"desired_status", &d.DesiredStatus},
		{"project.id", &d.Project.ID},
		{"project.name", &d.Project.Name},
		{"environment.id", &d.Environment.ID},
		{"environment.name", &d.Environment.Name},
		{"environment.cluster_name", &d.Environment.ClusterName},
	}
}

// jsonHasNUL reports whether valid JSON raw holds the escape \u0000 in a
// string (a raw NUL byte is not valid JSON): PostgreSQL's jsonb refuses
// it, and receivers' parsers differ on it. In valid JSON a backslash only
// starts an escape, so skipping each escape's next byte is exact.
func jsonHasNUL(raw []byte) bool {
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\\' {
			continue
		}
		if i+5 < len(raw) && raw[i+1] == 'u' && string(raw[i+2:i+6]) == "0000" {
			return true
		}
		i++
	}
	return false
}

type namedList struct {
	field string
	raw   *json.RawMessage
}

func (d *DeploymentEvent) lists() [5]namedList {
	return [5]namedList{
		{"applications", &d.Applications},
		{"databases", &d.Databases},
		{"containers", &d.Containers},
		{"jobs", &d.Jobs},
		{"logs", &d.Logs},
	}
}

var emptyArray = json.RawMessage("[]")

// jsonArray returns raw if it is a JSON array, and [] if it is absent or
// null; ok is false for anything else.
func jsonArray(raw json.RawMessage) (json.RawMessage, bool) {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || string(trimmed) == "null" {
		return emptyArray, true
	}
	if trimmed[0] != '[' || !json.Valid(trimmed) {
		return nil, false
	}
	return trimmed, true
}

// deploymentPayload is the "payload" object of Qovery's envelope, as
// stored in Event.Payload. Every key is always present.
type deploymentPayload struct {
	ID            string                `json:"id"`
	DeploymentID  string                `json:"deployment_id"`
	CurrentStatus string                `json:"current_status"`
	DesiredStatus string                `json:"desired_status"`
	Organization  payloadOrganization   `json:"organization"`
	Project       DeploymentProject     `json:"project"`
	Environment   DeploymentEnvironment `json:"environment"`
	Applications  json.RawMessage       `json:"applications"`
	Databases     json.RawMessage       `json:"databases"`
	Containers    json.RawMessage       `json:"containers"`
	Jobs          json.RawMessage       `json:"jobs"`
	Logs          json.RawMessage       `json:"logs"`
}

type payloadOrganization struct {
	ID string `json:"id"`
}

// NewEvent turns a validated intake body into the event to store, with
// its payload rendered once. A deployment without an id gets a new one.
// A list that is not a JSON array (d was not validated) is sent as [].
// With an idempotency key, the event carries it and its ContentHash.
func NewEvent(orgID uuid.UUID, d *DeploymentEvent, id uuid.UUID, now time.Time, key string) *Event {
	deploymentID := d.DeploymentID
	if deploymentID == "" {
		deploymentID = uuid.NewString()
	}
	p := deploymentPayload{
		ID:            deploymentID,
		DeploymentID:  deploymentID,
		CurrentStatus: d.CurrentStatus,
		DesiredStatus: d.DesiredStatus,
		Organization:  payloadOrganization{ID: orgID.String()},
		Project:       d.Project,
		Environment:   d.Environment,
	}
	src := d.lists()
	for i, dst := range [...]*json.RawMessage{&p.Applications, &p.Databases, &p.Containers, &p.Jobs, &p.Logs} {
		raw, ok := jsonArray(*src[i].raw)
		if !ok {
			raw = emptyArray
		}
		*dst = raw
	}
	payload := marshalPayload(&p)
	ev := &Event{
		ID:              id,
		OrganizationID:  orgID,
		CreatedAt:       now,
		Type:            d.EventType,
		ProjectName:     d.Project.Name,
		EnvironmentMode: d.Environment.Mode,
		Payload:         payload,
	}
	if key != "" {
		ev.IdempotencyKey = key
		// The hash is of what the caller sent: a deployment id made up
		// here would make every retry of the same body look different.
		hashed := payload
		if d.DeploymentID == "" {
			p.ID, p.DeploymentID = "", ""
			hashed = marshalPayload(&p)
		}
		ev.ContentHash = ContentHash(d.EventType, hashed)
	}
	return ev
}

func marshalPayload(p *deploymentPayload) []byte {
	b, err := json.Marshal(p)
	if err != nil {
		// Unreachable: every field is a string or a checked JSON array.
		panic("webhook: rendering a deployment payload: " + err.Error())
	}
	return b
}

// Render returns the request body a webhook of the given kind receives
// for ev. The API shows an attempt's request with it and the dispatcher
// sends it, so both always agree.
func Render(kind Kind, ev *Event) []byte {
	if kind == KindSlack {
		return RenderSlack(ev)
	}
	return RenderStandard(ev)
}

// RenderStandard returns Qovery's envelope around the stored payload,
// which is spliced in verbatim (an empty payload is sent as null).
func RenderStandard(ev *Event) []byte {
	payload := ev.Payload
	if len(payload) == 0 {
		payload = json.RawMessage("null")
	}
	// Sized to fit, so the payload is copied once: a render is made per
	// attempt, and its garbage is the dispatcher's largest.
	const envelope = len(`{"created_at":"","event_type":"","payload_type":"DEPLOYMENT","payload_id":"","payload":}`)
	b := make([]byte, 0, envelope+len(time.RFC3339Nano)+len(ev.Type)+36+len(payload))
	b = append(b, `{"created_at":"`...)
	b = ev.CreatedAt.UTC().AppendFormat(b, time.RFC3339Nano) // digits and -:.TZ: nothing to escape
	b = append(b, `","event_type":`...)
	b = appendJSONString(b, string(ev.Type))
	b = append(b, `,"payload_type":"DEPLOYMENT","payload_id":"`...)
	b = appendUUID(b, ev.ID)
	b = append(b, `","payload":`...)
	b = append(b, payload...)
	b = append(b, '}')
	return b
}

// appendUUID appends id as uuid.UUID.String does, without its allocation.
func appendUUID(b []byte, id uuid.UUID) []byte {
	for i, c := range id {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b = append(b, '-')
		}
		b = append(b, hexDigits[c>>4], hexDigits[c&0xf])
	}
	return b
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string. Unlike strconv.AppendQuote
// it escapes only what JSON requires (plus U+2028 and U+2029, which break
// JavaScript parsers), and replaces invalid UTF-8 with U+FFFD as
// encoding/json does.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// slackMessage is a Slack incoming-webhook message
// (https://api.slack.com/messaging/webhooks): text is the notification
// and fallback, blocks what people read.
type slackMessage struct {
	Text   string       `json:"text"`
	Blocks []slackBlock `json:"blocks"`
}

type slackBlock struct {
	Type     string      `json:"type"`
	Text     *slackText  `json:"text,omitempty"`
	Fields   []slackText `json:"fields,omitempty"`
	Elements []slackText `json:"elements,omitempty"`
}

type slackText struct {
	Type  string `json:"type"`
	Text  string `json:"text"`
	Emoji bool   `json:"emoji,omitempty"`
}

// slackTitles gives each event type its emoji and headline.
var slackTitles = map[EventType][2]string{
	EventDeploymentStarted:    {":rocket:", "Deployment started"},
	EventDeploymentSuccessful: {":white_check_mark:", "Deployment successful"},
	EventDeploymentFailure:    {":x:", "Deployment failed"},
	EventDeploymentCancelled:  {":no_entry_sign:", "Deployment cancelled"},
}

// maxSlackValue caps each user-provided value so that a block stays within
// Slack's limits (2000 characters per field) even once escaped.
const maxSlackValue = 300

// RenderSlack returns a Slack message announcing ev. Values come from the
// stored payload, falling back to the event's own fields if it cannot be
// read.
func RenderSlack(ev *Event) []byte {
	var p deploymentPayload
	if err := json.Unmarshal(ev.Payload, &p); err != nil {
		p = deploymentPayload{}
	}
	if p.Project.Name == "" {
		p.Project.Name = ev.ProjectName
	}
	if p.Environment.Mode == "" {
		p.Environment.Mode = ev.EnvironmentMode
	}
	title, ok := slackTitles[ev.Type]
	if !ok {
		title = [2]string{":bell:", "Deployment event " + string(ev.Type)}
	}
	emoji, headline := title[0], title[1]

	project := slackEscape(p.Project.Name)
	environment := slackEscape(p.Environment.Name)
	if p.Environment.Mode != "" {
		environment += " (" + slackEscape(string(p.Environment.Mode)) + ")"
	}
	fields := []slackText{
		{Type: "mrkdwn", Text: "*Project*\n" + project},
		{Type: "mrkdwn", Text: "*Environment*\n" + environment},
	}
	if p.DeploymentID != "" {
		fields = append(fields, slackText{Type: "mrkdwn", Text: "*Deployment id*\n`" + slackEscape(p.DeploymentID) + "`"})
	}
	if status := slackStatus(p.CurrentStatus, p.DesiredStatus); status != "" {
		fields = append(fields, slackText{Type: "mrkdwn", Text: "*Status*\n" + status})
	}
	if p.Environment.ClusterName != "" {
		fields = append(fields, slackText{Type: "mrkdwn", Text: "*Cluster*\n" + slackEscape(p.Environment.ClusterName)})
	}

	at := ev.CreatedAt.UTC()
	// Slack shows <!date^…> in the reader's time zone, the fallback elsewhere.
	when := "<!date^" + strconv.FormatInt(at.Unix(), 10) + "^{date_short_pretty} at {time_secs}|" + at.Format(time.RFC3339) + ">"

	msg := slackMessage{
		Text: emoji + " " + headline + " — project " + project + ", environment " + environment,
		Blocks: []slackBlock{
			{Type: "header", Text: &slackText{Type: "plain_text", Text: emoji + " " + headline, Emoji: true}},
			{Type: "section", Fields: fields},
			{Type: "context", Elements: []slackText{{Type: "mrkdwn", Text: when + " · sent by hookd"}}},
		},
	}
	b, err := json.Marshal(&msg)
	if err != nil {
		// Unreachable: the message holds only strings.
		panic("webhook: rendering a Slack message: " + err.Error())
	}
	return b
}

func slackStatus(current, desired string) string {
	switch {
	case current != "" && desired != "" && current != desired:
		return slackEscape(current) + " → " + slackEscape(desired)
	case current != "":
		return slackEscape(current)
	default:
		return slackEscape(desired)
	}
}

var slackEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "\n", " ", "\r", " ", "\t", " ")

// slackEscape makes a user-provided value safe in Slack mrkdwn: &, < and >
// are control characters there (<!channel>, <url|link>); line breaks
// become spaces so the summary stays on one line; and the value is
// shortened to keep the message within Slack's limits.
func slackEscape(s string) string {
	if utf8.RuneCountInString(s) > maxSlackValue {
		runes := []rune(s)
		s = string(runes[:maxSlackValue-1]) + "…"
	}
	return slackEscaper.Replace(s)
}

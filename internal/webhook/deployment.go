package webhook

import (
	"bytes"
	"encoding/json"
	"slices"
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
		depth, nul := jsonShape(raw)
		if nul {
			return Invalid(l.field, "must not contain a NUL character (\\u0000)")
		}
		if depth > MaxListDepth {
			return Invalid(l.field, "must not nest arrays and objects more than %d deep", MaxListDepth)
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

// MaxListDepth is how deep a service list may nest arrays and objects,
// the list itself counted. Go's encoder refuses JSON nested more than
// 10,000 deep, so hookd's own delivery log, which shows each attempt's
// body (the list two levels down in it), failed on a list nested 9,999
// deep; many receivers' parsers stop far sooner (Ruby's at 100).
// Qovery's lists are a few levels deep.
const MaxListDepth = 32

// jsonShape walks valid JSON raw once, and returns how deep it nests
// arrays and objects and whether a string in it holds the escape \u0000
// (a raw NUL byte is not valid JSON): PostgreSQL's jsonb refuses it, and
// receivers' parsers differ on it. In valid JSON a backslash only starts
// an escape, in a string, so skipping each escape's next byte is exact.
func jsonShape(raw []byte) (deepest int, nul bool) {
	depth, inString := 0, false
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; {
		case inString && c == '\\':
			nul = nul || i+5 < len(raw) && raw[i+1] == 'u' && string(raw[i+2:i+6]) == "0000"
			i++ // the escaped byte cannot end the string
		case c == '"':
			inString = !inString
		case inString:
		case c == '[' || c == '{':
			depth++
			deepest = max(deepest, depth)
		case c == ']' || c == '}':
			depth--
		}
	}
	return deepest, nul
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

// marshalPayload writes p byte for byte as json.Marshal does, which
// wrote every payload stored before: an event's ContentHash is of these
// bytes, so a retry with the same Idempotency-Key must find the same ones
// across an upgrade. By hand, because json.Marshal reflects over p and
// validates and compacts each list again, when jsonArray has checked
// them already: it took 24,500 of NewEvent's 31,000 instructions per
// event. Its lists must be JSON arrays (jsonArray's).
func marshalPayload(p *deploymentPayload) []byte {
	texts := [...]struct{ key, s string }{
		{`{"id":`, p.ID},
		{`,"deployment_id":`, p.DeploymentID},
		{`,"current_status":`, p.CurrentStatus},
		{`,"desired_status":`, p.DesiredStatus},
		{`,"organization":{"id":`, p.Organization.ID},
		{`},"project":{"id":`, p.Project.ID},
		{`,"name":`, p.Project.Name},
		{`},"environment":{"id":`, p.Environment.ID},
		{`,"name":`, p.Environment.Name},
		{`,"mode":`, string(p.Environment.Mode)},
		{`,"cluster_name":`, p.Environment.ClusterName},
	}
	lists := [...]struct {
		key string
		raw []byte
	}{
		{`},"applications":`, p.Applications},
		{`,"databases":`, p.Databases},
		{`,"containers":`, p.Containers},
		{`,"jobs":`, p.Jobs},
		{`,"logs":`, p.Logs},
	}
	n := 1 // what escapes add is left to append
	for _, t := range texts {
		n += len(t.key) + len(t.s) + 2
	}
	for _, l := range lists {
		n += len(l.key) + len(l.raw)
	}
	b := make([]byte, 0, n)
	for _, t := range texts {
		b = appendMarshaledString(append(b, t.key...), t.s)
	}
	for _, l := range lists {
		b = appendMarshaledRaw(append(b, l.key...), l.raw)
	}
	return append(b, '}')
}

// appendMarshaledRaw appends valid JSON raw as json.Marshal writes a
// json.RawMessage: compacted, with <, >, &, U+2028 and U+2029 escaped.
// Raw with none of those bytes, nor whitespace, is already so.
func appendMarshaledRaw(b, raw []byte) []byte {
	if marshaledAlready(raw) {
		return append(b, raw...)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, raw); err != nil {
		// Unreachable: jsonArray checked it.
		panic("webhook: rendering a deployment payload: " + err.Error())
	}
	var escaped bytes.Buffer
	json.HTMLEscape(&escaped, compact.Bytes())
	return append(b, escaped.Bytes()...)
}

// marshaledAlready reports whether raw holds no whitespace, no <, > or &,
// and no 0xE2, the first byte of U+2028 and U+2029 (and of other
// characters: those go the long way).
func marshaledAlready(raw []byte) bool {
	for _, c := range raw {
		switch c {
		case ' ', '\t', '\n', '\r', '<', '>', '&', 0xe2:
			return false
		}
	}
	return true
}

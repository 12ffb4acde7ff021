package webhook

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

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
func appendJSONString(b []byte, s string) []byte { return appendEscaped(b, s, false) }

// appendMarshaledString appends s byte for byte as json.Marshal writes a
// string: as appendJSONString, with <, > and & escaped too.
func appendMarshaledString(b []byte, s string) []byte { return appendEscaped(b, s, true) }

func appendEscaped(b []byte, s string, html bool) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && !(html && (c == '<' || c == '>' || c == '&')) {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
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
	// Verbatim stops Slack from parsing plain text: without it a URL or
	// a channel's name in a value becomes a link, and "@here" or
	// "@channel" in one may notify everyone. Our own markup
	// (<!date^…>, *bold*) is still read.
	Verbatim bool `json:"verbatim,omitempty"`
}

// slackValue is a mrkdwn text object holding values from an event.
func slackValue(text string) slackText {
	return slackText{Type: "mrkdwn", Text: text, Verbatim: true}
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
		slackValue("*Project*\n" + project),
		slackValue("*Environment*\n" + environment),
	}
	if p.DeploymentID != "" {
		fields = append(fields, slackValue("*Deployment id*\n"+slackCode(p.DeploymentID)))
	}
	if status := slackStatus(p.CurrentStatus, p.DesiredStatus); status != "" {
		fields = append(fields, slackValue("*Status*\n"+status))
	}
	if p.Environment.ClusterName != "" {
		fields = append(fields, slackValue("*Cluster*\n"+slackEscape(p.Environment.ClusterName)))
	}

	at := ev.CreatedAt.UTC()
	// Slack shows <!date^…> in the reader's time zone, the fallback elsewhere.
	when := "<!date^" + strconv.FormatInt(at.Unix(), 10) + "^{date_short_pretty} at {time_secs}|" + at.Format(time.RFC3339) + ">"

	msg := slackMessage{
		Text: emoji + " " + headline + " — project " + project + ", environment " + environment,
		Blocks: []slackBlock{
			{Type: "header", Text: &slackText{Type: "plain_text", Text: emoji + " " + headline, Emoji: true}},
			{Type: "section", Fields: fields},
			{Type: "context", Elements: []slackText{slackValue(when + " · sent by hookd")}},
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
		// Two values share one field: each gets half a value's room, or
		// escaped they could pass the field's limit and Slack would refuse
		// the message on every attempt.
		return slackEscapeCut(current, maxSlackValue/2) + " → " + slackEscapeCut(desired, maxSlackValue/2)
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
func slackEscape(s string) string { return slackEscapeCut(s, maxSlackValue) }

// slackCode shows a user-provided value as inline code. mrkdwn has no
// escape for a backtick, so one in the value would close the span early
// and the rest would be read as mrkdwn (*bold*, _italic_): each becomes
// ˋ (U+02CB), which looks alike. It is one character for one, so the
// value is cut where slackEscape would cut it. Inside the span *, _ and
// ~ are shown as they are.
func slackCode(s string) string {
	return "`" + slackEscape(strings.ReplaceAll(s, "`", "\u02cb")) + "`"
}

// slackEscapeCut is slackEscape cutting the value to n characters.
func slackEscapeCut(s string, n int) string {
	if utf8.RuneCountInString(s) > n {
		runes := []rune(s)
		s = string(runes[:n-1]) + "…"
	}
	return slackEscaper.Replace(s)
}

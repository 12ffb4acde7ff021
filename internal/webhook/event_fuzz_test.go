package webhook

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
)

// standardEnvelope mirrors RenderStandard's keys in the order it writes
// them, so that decoding and encoding again must give the same bytes.
type standardEnvelope struct {
	CreatedAt   string          `json:"created_at"`
	EventType   EventType       `json:"event_type"`
	PayloadType string          `json:"payload_type"`
	PayloadID   string          `json:"payload_id"`
	Payload     json.RawMessage `json:"payload"`
}

// FuzzDeploymentEvent feeds arbitrary intake bodies through the path the
// API takes (decode, Validate, NewEvent) and both renderers: a valid event
// must always render JSON that survives a decode/encode round trip
// unchanged, with the stored payload spliced in verbatim.
func FuzzDeploymentEvent(f *testing.F) {
	f.Add([]byte(`{"event_type":"DEPLOYMENT_STARTED","project":{"name":"api"},"environment":{"name":"prod","mode":"PRODUCTION"}}`))
	f.Add([]byte(`{"event_type":"DEPLOYMENT_FAILURE","deployment_id":"d1","project":{"name":"<!channel> & co"},"environment":{"name":"a\nb","mode":"STAGING","cluster_name":"\u2028"},"applications":[{"x":1e400}],"logs":null}`))
	f.Add([]byte(`{"event_type":"DEPLOYMENT_SUCCESSFUL","project":{"name":"\ud800"},"environment":{"name":"\u0000\b\f","mode":"PREVIEW"},"jobs":{}}`))
	now := time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC)
	org := uuid.MustParse("6d5e6a9c-9c4c-4a55-9d3b-7c4f0f1a2b3c")
	id := uuid.MustParse("01900000-0000-7000-8000-000000000001")
	f.Fuzz(func(t *testing.T, body []byte) {
		var d DeploymentEvent
		if err := json.Unmarshal(body, &d); err != nil {
			return
		}
		if err := d.Validate(); err != nil {
			if ErrorCode(err) != EInvalid {
				t.Fatalf("Validate returned %v with code %q, want %q", err, ErrorCode(err), EInvalid)
			}
			return
		}
		ev := NewEvent(org, &d, id, now, "")
		if !json.Valid(ev.Payload) {
			t.Fatalf("payload is not valid JSON: %s", ev.Payload)
		}

		std := RenderStandard(ev)
		var env standardEnvelope
		roundTrip(t, std, &env, false)
		if !bytes.Equal(env.Payload, ev.Payload) {
			t.Errorf("envelope payload differs from the stored payload:\n got %s\nwant %s", env.Payload, ev.Payload)
		}
		if env.EventType != ev.Type || env.PayloadID != id.String() {
			t.Errorf("envelope = %+v, want type %s and id %s", env, ev.Type, id)
		}

		var msg slackMessage
		roundTrip(t, RenderSlack(ev), &msg, true)
	})
}

// roundTrip checks that b is valid JSON which, decoded into v and encoded
// again, equals b compacted. escapeHTML says how the renderer escapes
// strings: RenderStandard writes <, > and & as they are, RenderSlack
// (json.Marshal) as \u003c and so on; json.Compact keeps either.
func roundTrip(t *testing.T, b []byte, v any, escapeHTML bool) {
	t.Helper()
	var compact bytes.Buffer
	if err := json.Compact(&compact, b); err != nil {
		t.Fatalf("not valid JSON: %v\n%s", err, b)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decoding: %v\n%s", err, b)
	}
	var again bytes.Buffer
	enc := json.NewEncoder(&again)
	enc.SetEscapeHTML(escapeHTML)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	if got := bytes.TrimSuffix(again.Bytes(), []byte("\n")); !bytes.Equal(got, compact.Bytes()) {
		t.Errorf("round trip changed the JSON:\n got %s\nwant %s", got, compact.Bytes())
	}
}

// FuzzMarshalPayload checks that the stored payload is written byte for
// byte as json.Marshal writes it, which wrote every payload stored before
// (an event's content hash is of these bytes), whatever its strings hold
// (NewEvent may be given an event that was not validated) and however its
// lists are spaced.
func FuzzMarshalPayload(f *testing.F) {
	f.Add("d1", "billing <api> & co", "prod\u2028eu", "PRODUCTION", []byte(`[{"id":"a1","name":"web"}]`))
	f.Add("", "a\"b\\c\b\f\n\r\t\x01\x7f", "\xff\xfe\x80 ok", "", []byte(" [ {\"x\" : 1e400, \"y\":[true ,null]} ,\"<&>\u2029\" ] "))
	f.Add("\u2029", "ascii only", "é ü 日本", "STAGING", []byte(`null`))
	f.Add("x", "y", "z", "PREVIEW", []byte("[\"a\u2028b\",\"\u00e9\"]")) // compact, but U+2028 to escape
	f.Fuzz(func(t *testing.T, id, name, env, mode string, list []byte) {
		raw, ok := jsonArray(list)
		if !ok {
			return
		}
		p := deploymentPayload{
			ID: id, DeploymentID: id + name, CurrentStatus: env, DesiredStatus: mode,
			Organization: payloadOrganization{ID: name},
			Project:      DeploymentProject{ID: env, Name: name},
			Environment:  DeploymentEnvironment{ID: id, Name: env, Mode: EnvironmentMode(mode), ClusterName: name + env},
			Applications: raw, Databases: emptyArray, Containers: raw, Jobs: emptyArray, Logs: raw,
		}
		want, err := json.Marshal(&p)
		if err != nil {
			t.Fatal(err)
		}
		if got := marshalPayload(&p); !bytes.Equal(got, want) {
			t.Fatalf("payload differs from json.Marshal's:\n got %s\nwant %s", got, want)
		}
	})
}

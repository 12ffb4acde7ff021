package api

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/webhook"
)

// "Send test event" sends the first event type the webhook subscribes
// to, for a made-up project, so that the receiver sees what the webhook
// will send.
func TestTestEventIsOfTheWebhooksFirstType(t *testing.T) {
	h := newAPIHarness(t)
	org := uuid.New()
	tok, _ := h.token(org)
	base := "/organization/" + org.String()
	var w webhookBody
	if st := h.do(tok, "POST", base+"/webhook", `{"kind":"STANDARD","target_url":"https://example.com/h","events":["DEPLOYMENT_CANCELLED","DEPLOYMENT_STARTED"]}`, &w); st != 201 {
		t.Fatalf("create: %d", st)
	}
	var sent testResponse
	if st := h.do(tok, "POST", base+"/webhook/"+w.ID+"/test", "", &sent); st != 202 {
		t.Fatalf("test: %d", st)
	}
	now := time.Now()
	tasks, err := h.db.DeliveryClaim(context.Background(), webhook.ClaimParams{Now: now.Add(time.Second), LeaseUntil: now.Add(time.Minute), Limit: 10})
	if err != nil || len(tasks) != 1 || tasks[0].Event.ID != sent.EventID {
		t.Fatalf("claimed %d (%v), want the test event %s", len(tasks), err, sent.EventID)
	}
	var payload struct{ Project struct{ Name string } }
	if err := json.Unmarshal(tasks[0].Event.Payload, &payload); err != nil {
		t.Fatal(err)
	}
	if ev := tasks[0].Event; ev.Type != webhook.EventDeploymentCancelled || payload.Project.Name != "hookd-test" {
		t.Errorf("test event of type %s, payload %+v; want %s for project hookd-test", ev.Type, payload, webhook.EventDeploymentCancelled)
	}
}

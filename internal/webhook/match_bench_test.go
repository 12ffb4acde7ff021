package webhook

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
)

// benchWebhooks returns n webhooks with the mix of filters an organization
// with many webhooks has: some with none, some on environment types, some
// on exact or wildcard project names, some subscribed elsewhere or off.
func benchWebhooks(n int) []*Webhook {
	hooks := make([]*Webhook, n)
	for i := range hooks {
		w := &Webhook{Enabled: true, Events: slices.Clone(EventTypes)}
		switch i % 6 {
		case 0: // no filter
		case 1:
			w.EnvironmentTypesFilter = []EnvironmentMode{ModeProduction, ModeStaging}
		case 2:
			w.ProjectNamesFilter = []string{fmt.Sprintf("service-%d", i), "billing-api"}
		case 3:
			w.ProjectNamesFilter = []string{"payments-*", "*-worker", "billing*api"}
			w.EnvironmentTypesFilter = []EnvironmentMode{ModeProduction}
		case 4:
			w.Events = []EventType{EventDeploymentStarted}
		case 5:
			w.Enabled = i%12 != 5
			w.ProjectNamesFilter = []string{"*"}
		}
		hooks[i] = w
	}
	return hooks
}

// BenchmarkMatch is intake's matching of one event against an
// organization's 1,000 webhooks.
func BenchmarkMatch(b *testing.B) {
	hooks := benchWebhooks(1000)
	ev := NewEvent(testOrg, validDeployment(), testEventID, testNow, "")
	b.ReportAllocs()
	var matched int
	for b.Loop() {
		matched = 0
		for _, w := range hooks {
			if w.Matches(ev) {
				matched++
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(hooks)), "ns/webhook")
	b.ReportMetric(float64(matched), "matched")
}

// benchDeployment is a deployment event with a service of each kind, about
// the size of a real one.
func benchDeployment() *DeploymentEvent {
	d := validDeployment()
	d.Applications = json.RawMessage(`[{"id":"a1","name":"web","commit_id":"4f2a9c1e7b3d","status":"DEPLOYMENT_ERROR"}]`)
	d.Databases = json.RawMessage(`[{"id":"d1","name":"main-db","status":"RUNNING"}]`)
	d.Jobs = json.RawMessage(`[{"id":"j1","name":"migrate","status":"RUNNING"}]`)
	return d
}

func BenchmarkNewEvent(b *testing.B) {
	d := benchDeployment()
	b.ReportAllocs()
	for b.Loop() {
		NewEvent(testOrg, d, testEventID, testNow, "")
	}
}

func BenchmarkRenderStandard(b *testing.B) {
	ev := NewEvent(testOrg, benchDeployment(), testEventID, testNow, "")
	b.SetBytes(int64(len(RenderStandard(ev))))
	b.ReportAllocs()
	for b.Loop() {
		RenderStandard(ev)
	}
}

func BenchmarkRenderSlack(b *testing.B) {
	ev := NewEvent(testOrg, benchDeployment(), testEventID, testNow, "")
	b.SetBytes(int64(len(RenderSlack(ev))))
	b.ReportAllocs()
	for b.Loop() {
		RenderSlack(ev)
	}
}

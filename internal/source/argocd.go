package source

import (
	"net/http"
	"strings"
	"time"

	"github.com/hookd/hookd/internal/webhook"
)

// Argo CD notifications through its webhook service, with the template
// hookd's docs give (docs/sources.md). Argo CD does not sign what it
// sends, so the template sends the source's secret in TokenHeader, which
// is compared in constant time.
// https://argo-cd.readthedocs.io/en/stable/operator-manual/notifications/services/webhook/

// TokenHeader carries the source's secret where the tool cannot sign.
const TokenHeader = "X-Hookd-Token"

func verifyArgoCD(secret string, h http.Header, _ []byte, _ time.Time) error {
	return verifyToken(TokenHeader, h, secret, "the request has no "+TokenHeader+" header: the Argo CD webhook service must send this source's secret in it")
}

// argoEvent is the body of hookd's Argo CD notification template.
type argoEvent struct {
	Event       string `json:"event"` // the trigger: sync-running, sync-succeeded, sync-failed, health-degraded
	App         string `json:"app"`
	Project     string `json:"project"`
	Environment string `json:"environment"`
	Namespace   string `json:"namespace"`
	Cluster     string `json:"cluster"`
	Revision    string `json:"revision"`
	Phase       string `json:"phase"`
	Health      string `json:"health"`
	StartedAt   string `json:"startedAt"`
	// HealthSince is when the application's health last changed
	// (health.lastTransitionTime, which Argo CD sets since 2.14; empty
	// before), sent by the health-degraded template.
	HealthSince string `json:"healthSince"`
	Repo        string `json:"repo"`
	URL         string `json:"url"`
}

// argoEvents maps the template's triggers to event types.
var argoEvents = map[string]webhook.EventType{
	"sync-running":    webhook.EventDeploymentStarted,
	"sync-succeeded":  webhook.EventDeploymentSuccessful,
	"sync-failed":     webhook.EventDeploymentFailure,
	"health-degraded": webhook.EventDeploymentFailure,
}

// argoPhases maps an operation's phase, for a template without "event".
var argoPhases = map[string]webhook.EventType{
	"Running":     webhook.EventDeploymentStarted,
	"Succeeded":   webhook.EventDeploymentSuccessful,
	"Failed":      webhook.EventDeploymentFailure,
	"Error":       webhook.EventDeploymentFailure,
	"Terminating": webhook.EventDeploymentCancelled,
}

// argoValue drops what Go templates print for a missing field.
func argoValue(s string) string {
	if s == "<no value>" {
		return ""
	}
	return strings.TrimSpace(s)
}

func translateArgoCD(src *webhook.Source, _ http.Header, body []byte) (Result, error) {
	var e argoEvent
	if err := decodeJSON("Argo CD notification", body, &e); err != nil {
		return Result{}, err
	}
	for _, f := range []*string{&e.Event, &e.App, &e.Project, &e.Environment, &e.Namespace, &e.Cluster, &e.Revision, &e.Phase, &e.Health, &e.StartedAt, &e.HealthSince, &e.Repo, &e.URL} {
		*f = argoValue(*f)
	}
	eventType, ok := argoEvents[e.Event]
	status := e.Event
	if e.Event == "" {
		eventType, ok = argoPhases[e.Phase]
		status = e.Phase
	}
	if !ok {
		return ignored("Argo CD event %q (phase %q) is not a sync running, succeeding or failing, nor health degrading", e.Event, e.Phase)
	}
	if e.Health != "" {
		status += " (health " + e.Health + ")"
	}
	// A multi-source application has no sync.revision (its revisions are
	// a list): the sync operation's start then tells its deployments
	// apart, as the same for each of its notifications.
	d := deployment{
		eventType:        eventType,
		project:          e.App,
		projectID:        e.Project,
		environment:      firstOf(e.Environment, e.Namespace),
		cluster:          e.Cluster,
		deploymentID:     e.App + "@" + firstOf(e.Revision, e.StartedAt),
		status:           status,
		projectField:     "app",
		environmentField: "namespace",
		application: application{
			ID:       e.App,
			Name:     firstOf(e.Repo, e.App),
			CommitID: e.Revision,
			URL:      e.URL,
		},
	}
	// Argo CD sends no delivery id: one trigger of one sync operation of
	// one revision is one delivery. Health can degrade, recover and degrade
	// again within one sync; Argo CD notifies each time, and the moment the
	// health changed tells them apart.
	key := e.App + "|" + e.Revision + "|" + firstOf(e.Event, e.Phase) + "|" + e.StartedAt
	if e.Event == "health-degraded" && e.HealthSince != "" {
		key += "|" + e.HealthSince
	}
	return d.result(src, key)
}

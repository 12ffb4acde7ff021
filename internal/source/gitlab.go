package source

import (
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/hookd/hookd/internal/webhook"
)

// GitLab project webhooks with "Deployment events": X-Gitlab-Event
// "Deployment Hook", authenticated by the webhook's secret token sent
// as it is in X-Gitlab-Token (GitLab does not sign the body).
// https://docs.gitlab.com/user/project/integrations/webhook_events/#deployment-events

func verifyGitLab(secret string, h http.Header, _ []byte, _ time.Time) error {
	return verifyToken("X-Gitlab-Token", h, secret, "the request has no X-Gitlab-Token header: set the GitLab webhook's secret token to this source's secret")
}

// gitlabStatuses maps a deployment's status to an event type; "created",
// "blocked" and approvals are not a deployment running or ending.
var gitlabStatuses = map[string]webhook.EventType{
	"running":  webhook.EventDeploymentStarted,
	"success":  webhook.EventDeploymentSuccessful,
	"failed":   webhook.EventDeploymentFailure,
	"canceled": webhook.EventDeploymentCancelled,
}

type gitlabDeployment struct {
	ObjectKind             string `json:"object_kind"`
	Status                 string `json:"status"`
	DeploymentID           jsonID `json:"deployment_id"`
	DeployableURL          string `json:"deployable_url"`
	Environment            string `json:"environment"`
	EnvironmentExternalURL string `json:"environment_external_url"`
	Project                struct {
		ID                jsonID `json:"id"`
		Name              string `json:"name"`
		WebURL            string `json:"web_url"`
		PathWithNamespace string `json:"path_with_namespace"`
	} `json:"project"`
	Ref       string `json:"ref"`
	ShortSHA  string `json:"short_sha"`
	CommitURL string `json:"commit_url"`
}

func translateGitLab(src *webhook.Source, h http.Header, body []byte) (Result, error) {
	if event := h.Get("X-Gitlab-Event"); event != "Deployment Hook" {
		if event == "" {
			return ignored("no X-Gitlab-Event header: only GitLab's Deployment Hook events are translated")
		}
		return ignored("GitLab %q events are not deployments: only Deployment Hook events are translated", event)
	}
	var p gitlabDeployment
	if err := decodeJSON("GitLab Deployment Hook", body, &p); err != nil {
		return Result{}, err
	}
	eventType, ok := gitlabStatuses[p.Status]
	if !ok {
		return ignored("GitLab deployment status %q is not a deployment starting, succeeding, failing or being canceled", p.Status)
	}
	// The full commit id is only in the commit URL, as its last segment.
	commit := p.ShortSHA
	if p.CommitURL != "" && strings.Contains(p.CommitURL, "/commit/") {
		commit = path.Base(p.CommitURL)
	}
	d := deployment{
		eventType:        eventType,
		project:          p.Project.Name,
		projectID:        p.Project.ID.String(),
		environment:      p.Environment,
		deploymentID:     p.DeploymentID.String(),
		status:           p.Status,
		projectField:     "project.name",
		environmentField: "environment",
		application: application{
			ID:       p.Project.ID.String(),
			Name:     firstOf(p.Project.PathWithNamespace, p.Project.Name),
			CommitID: commit,
			Branch:   p.Ref,
			URL:      firstOf(p.DeployableURL, p.Project.WebURL),
		},
	}
	// GitLab 17.4+ sends an Idempotency-Key that stays the same across
	// its retries; older versions only the event's UUID.
	return d.result(src, firstOf(h.Get("Idempotency-Key"), h.Get("X-Gitlab-Event-UUID")))
}

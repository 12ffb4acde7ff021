package source

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"net/http"
	"time"

	"github.com/hookd/hookd/internal/webhook"
)

// GitHub repository (or organization) webhooks: deployment_status events,
// signed with X-Hub-Signature-256 ("sha256=" and the hex HMAC-SHA256 of
// the body, keyed with the webhook's secret).
// https://docs.github.com/en/webhooks/webhook-events-and-payloads#deployment_status

var githubHashes = map[string]func() hash.Hash{"sha256": sha256.New}

func verifyGitHub(secret string, h http.Header, body []byte, _ time.Time) error {
	return verifyHexHMAC("X-Hub-Signature-256", h.Get("X-Hub-Signature-256"), secret, body, githubHashes,
		"set the GitHub webhook's Secret to this source's secret, so that GitHub signs what it sends")
}

// githubStates maps deployment_status.state to an event type; "inactive"
// (a newer deployment to the same environment replaced this one) is not a
// deployment of its own and is left out, like any state not listed.
var githubStates = map[string]webhook.EventType{
	"queued":      webhook.EventDeploymentStarted,
	"pending":     webhook.EventDeploymentStarted,
	"in_progress": webhook.EventDeploymentStarted,
	"success":     webhook.EventDeploymentSuccessful,
	"failure":     webhook.EventDeploymentFailure,
	"error":       webhook.EventDeploymentFailure,
}

type githubDeploymentStatus struct {
	DeploymentStatus struct {
		ID             jsonID `json:"id"`
		State          string `json:"state"`
		Environment    string `json:"environment"`
		TargetURL      string `json:"target_url"`
		LogURL         string `json:"log_url"`
		EnvironmentURL string `json:"environment_url"`
	} `json:"deployment_status"`
	Deployment struct {
		ID          jsonID `json:"id"`
		SHA         string `json:"sha"`
		Ref         string `json:"ref"`
		Environment string `json:"environment"`
	} `json:"deployment"`
	Repository struct {
		ID       jsonID `json:"id"`
		Name     string `json:"name"`
		FullName string `json:"full_name"`
		HTMLURL  string `json:"html_url"`
	} `json:"repository"`
}

func translateGitHub(src *webhook.Source, h http.Header, body []byte) (Result, error) {
	event := h.Get("X-GitHub-Event")
	// GitHub's default content type is a form. Refused at the ping too, so
	// that GitHub shows the webhook failing when it is set up, not at the
	// first deployment.
	if (event == "ping" || event == "deployment_status") && bytes.HasPrefix(body, []byte("payload=")) {
		return Result{}, webhook.Errorf(webhook.EInvalid, "the body is form-encoded: set the GitHub webhook's content type to application/json")
	}
	switch event {
	case "ping":
		return Result{Ping: true, Ignored: "ping: GitHub can reach this source; it will send deployment_status events"}, nil
	case "deployment_status":
	case "":
		return ignored("no X-GitHub-Event header: only GitHub's deployment_status events are translated")
	default:
		return ignored("GitHub %q events are not deployments: only deployment_status events are translated", event)
	}
	var p githubDeploymentStatus
	if err := decodeJSON("GitHub deployment_status", body, &p); err != nil {
		return Result{}, err
	}
	state := p.DeploymentStatus.State
	eventType, ok := githubStates[state]
	if !ok {
		return ignored("GitHub deployment status %q is not a deployment starting, succeeding or failing", state)
	}
	d := deployment{
		eventType:        eventType,
		project:          p.Repository.Name,
		projectID:        p.Repository.ID.String(),
		environment:      firstOf(p.Deployment.Environment, p.DeploymentStatus.Environment),
		deploymentID:     p.Deployment.ID.String(),
		status:           state,
		projectField:     "repository.name",
		environmentField: "deployment.environment",
		application: application{
			ID:       p.Repository.ID.String(),
			Name:     firstOf(p.Repository.FullName, p.Repository.Name),
			CommitID: p.Deployment.SHA,
			Branch:   p.Deployment.Ref,
			URL:      firstOf(p.DeploymentStatus.LogURL, p.DeploymentStatus.TargetURL, p.Repository.HTMLURL),
		},
	}
	return d.result(src, githubKey(p.DeploymentStatus.ID.String(), body))
}

// githubKey is a deployment status's delivery id, taken from what the
// signature covers: GitHub signs the body alone, so X-GitHub-Delivery
// (which its redeliveries keep) would let anyone holding one signed
// request send it again under a fresh header as a new event. Each
// deployment status has an id of its own, the same in every delivery of
// it; a body without one (not GitHub's) is keyed on its bytes.
func githubKey(statusID string, body []byte) string {
	if statusID != "" {
		return "deployment_status:" + statusID
	}
	sum := sha256.Sum256(body)
	return "sha256:" + hex.EncodeToString(sum[:])
}

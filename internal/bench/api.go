package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// api talks to one hookd's HTTP API as an organization's client.
type api struct {
	base, org, auth string
	client          *http.Client
}

// newHTTPClient keeps up to conns connections to one host open between
// requests, so a run measures requests, not TCP handshakes.
func newHTTPClient(conns int) *http.Client {
	return &http.Client{
		Timeout: 60 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
			IdleConnTimeout:     90 * time.Second,
		},
	}
}

// eventBody is the intake request every scenario sends: a failed
// deployment with one application, about the size of a real one.
var eventBody = []byte(`{"event_type":"DEPLOYMENT_FAILURE","deployment_id":"bench-deploy","current_status":"DEPLOYMENT_ERROR","desired_status":"RUNNING",` +
	`"project":{"id":"8b1f4c52-4d0e-4a53-9b5e-0d6f3f1e2a10","name":"billing-api"},` +
	`"environment":{"id":"5c2d1a4e-7f3b-4c8d-9e0a-1b2c3d4e5f60","name":"prod-eu","mode":"PRODUCTION","cluster_name":"eu-west-3"},` +
	`"applications":[{"id":"0f9e8d7c-6b5a-4948-8372-615243342516","name":"web","commit_id":"4f2a9c1e7b3d","status":"DEPLOYMENT_ERROR"}]}`)

// createWebhook registers a STANDARD webhook for every event type, with a
// secret so hookd signs each request as it would in production.
func (a *api) createWebhook(ctx context.Context, targetURL string) (string, error) {
	body, _ := json.Marshal(map[string]any{
		"kind":          "STANDARD",
		"target_url":    targetURL,
		"target_secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
		"description":   "hookd bench",
		"events":        []string{"DEPLOYMENT_STARTED", "DEPLOYMENT_CANCELLED", "DEPLOYMENT_FAILURE", "DEPLOYMENT_SUCCESSFUL"},
	})
	status, resp, err := a.do(ctx, "POST", "/organization/"+a.org+"/webhook", body)
	if err != nil {
		return "", err
	}
	if status != http.StatusCreated {
		return "", fmt.Errorf("creating a webhook: %d %s", status, resp)
	}
	var w struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(resp, &w); err != nil {
		return "", fmt.Errorf("creating a webhook: %v", err)
	}
	return w.ID, nil
}

func (a *api) deleteWebhook(ctx context.Context, id string) error {
	status, resp, err := a.do(ctx, "DELETE", "/organization/"+a.org+"/webhook/"+id, nil)
	if err != nil {
		return err
	}
	if status != http.StatusNoContent && status != http.StatusNotFound {
		return fmt.Errorf("deleting webhook %s: %d %s", id, status, resp)
	}
	return nil
}

// idField is how encoding/json writes the receipt's id, its first key.
var idField = []byte(`"id":"`)

// sendEvent posts one event and returns its id (the payload_id the
// target will see) when hookd accepted it with 202.
func (a *api) sendEvent(ctx context.Context) (string, error) {
	status, resp, err := a.do(ctx, "POST", "/organization/"+a.org+"/deployment-event", eventBody)
	if err != nil {
		return "", err
	}
	if status != http.StatusAccepted {
		return "", fmt.Errorf("intake answered %d %s", status, bytes.TrimSpace(resp))
	}
	i := bytes.Index(resp, idField)
	if i < 0 || len(resp) < i+len(idField)+36 {
		return "", fmt.Errorf("intake answered %s: no id", resp)
	}
	return string(resp[i+len(idField) : i+len(idField)+36]), nil
}

func (a *api) do(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, r)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", a.auth)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, data, err
}

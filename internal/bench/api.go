package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// api talks to one hookd's HTTP API as an organization's client.
type api struct {
	base, org string
	// auth is the Authorization header's value, one slice for every
	// request: each Header.Set would allocate one.
	auth   []string
	client *http.Client
}

// newAPI is a client of the hookd at base (set later when "") for org,
// with a token of hookd's own or a JWT, keeping up to conns connections.
func newAPI(base, org, token string, conns int) *api {
	return &api{base: strings.TrimRight(base, "/"), org: org, auth: []string{authorization(token)}, client: newHTTPClient(conns)}
}

// authorization is the header for a token: hookd's own tokens, or a JWT.
func authorization(token string) string {
	if strings.HasPrefix(token, "hkd_") {
		return "Token " + token
	}
	return "Bearer " + token
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
	resp, data, err := a.do(ctx, "POST", "/organization/"+a.org+"/webhook", "", body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("creating a webhook: %d %s", resp.StatusCode, data)
	}
	var w struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(data, &w); err != nil {
		return "", fmt.Errorf("creating a webhook: %v", err)
	}
	return w.ID, nil
}

func (a *api) deleteWebhook(ctx context.Context, id string) error {
	resp, data, err := a.do(ctx, "DELETE", "/organization/"+a.org+"/webhook/"+id, "", nil)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusNotFound {
		return fmt.Errorf("deleting webhook %s: %d %s", id, resp.StatusCode, data)
	}
	return nil
}

// idField is how encoding/json writes the receipt's id, its first key.
var idField = []byte(`"id":"`)

// Intake's refusals for now, 503 (its queue stayed full for a second, or
// the database did not answer within 10 s) and 429 (a rate limit), are
// retried after their Retry-After with the event's Idempotency-Key, as a
// sender should: intakeAttempts requests at most per event, each wait at
// most maxRetryAfter (and none past the run's context).
const (
	intakeAttempts = 5
	maxRetryAfter  = 30 * time.Second // hookd's longest: a database it cannot write
)

// refusal is intake's 503 or 429: try again after wait.
type refusal struct {
	status int
	wait   time.Duration
	body   []byte
}

func (e *refusal) Error() string {
	return fmt.Sprintf("intake answered %d (Retry-After %v) %s", e.status, e.wait, bytes.TrimSpace(e.body))
}

// retryAfter reads a Retry-After of whole seconds, as hookd writes it;
// a missing or other one is a second.
func retryAfter(h http.Header) time.Duration {
	s, err := strconv.Atoi(h.Get("Retry-After"))
	if err != nil || s < 0 {
		return time.Second
	}
	return min(time.Duration(s)*time.Second, maxRetryAfter)
}

// sendEvent posts one event with its Idempotency-Key and returns its id
// (the payload_id the target will see) when hookd accepted it with 202.
// A 503 or 429 is a *refusal.
func (a *api) sendEvent(ctx context.Context, key string) (string, error) {
	resp, body, err := a.do(ctx, "POST", "/organization/"+a.org+"/deployment-event", key, eventBody)
	if err != nil {
		return "", err
	}
	switch resp.StatusCode {
	case http.StatusAccepted:
	case http.StatusServiceUnavailable, http.StatusTooManyRequests:
		return "", &refusal{status: resp.StatusCode, wait: retryAfter(resp.Header), body: body}
	default:
		return "", fmt.Errorf("intake answered %d %s", resp.StatusCode, bytes.TrimSpace(body))
	}
	i := bytes.Index(body, idField)
	if i < 0 || len(body) < i+len(idField)+36 {
		return "", fmt.Errorf("intake answered %s: no id", body)
	}
	return string(body[i+len(idField) : i+len(idField)+36]), nil
}

// jsonContentType is the Content-Type header of every request body.
var jsonContentType = []string{"application/json"}

// do sends a request with an Idempotency-Key unless key is "", and
// returns the response, its body read and closed. Its headers are set in
// the map without Header.Set, which allocates a slice per value: the
// bench's client shares the machine with hookd, so an intake request
// costs what it did before it carried a key.
func (a *api) do(ctx context.Context, method, path, key string, body []byte) (*http.Response, []byte, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, r)
	if err != nil {
		return nil, nil, err
	}
	req.Header["Authorization"] = a.auth
	if body != nil {
		req.Header["Content-Type"] = jsonContentType
	}
	if key != "" {
		req.Header["Idempotency-Key"] = []string{key}
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp, data, err
}

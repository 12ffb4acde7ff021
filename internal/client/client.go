// Package client is the Go client for hookd's HTTP API: the one place that
// builds its requests and decodes its answers, used by the command line.
//
// It describes the API as the wire sees it (openapi.yaml) and must never
// import hookd's server packages: a client that shared the server's types
// would keep compiling when the wire format changed under it.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Client calls one hookd server with one credential.
type Client struct {
	base string
	auth string
	http *http.Client
	// Retries is how many times a request answered 429 or 503 with a
	// Retry-After of at most MaxRetryAfter is sent again, after that
	// wait. hookd gives those answers before storing anything (a rate
	// limit, a saturated database, a stopping node), so a retry cannot
	// make a duplicate.
	Retries       int
	MaxRetryAfter time.Duration
}

// New returns a client for the server at baseURL. The token is either an
// API token or a JWT; a nil httpClient means http.DefaultClient.
func New(baseURL, token string, httpClient *http.Client) *Client {
	if httpClient == nil {
		httpClient = http.DefaultClient
	}
	c := &Client{base: strings.TrimRight(baseURL, "/"), http: httpClient, Retries: 3, MaxRetryAfter: 30 * time.Second}
	switch {
	case token == "":
	case strings.Count(token, ".") == 2:
		// A JWT is three base64url parts joined by dots; API tokens have none.
		c.auth = "Bearer " + token
	default:
		c.auth = "Token " + token
	}
	return c
}

// APIError is an answer other than 2xx, decoded from the API's error body.
type APIError struct {
	Status int    `json:"status"`
	Title  string `json:"error"` // the status text; Go forbids a field named Error beside the method
	Detail string `json:"detail"`
	// RetryAfter is the wait a 429 or 503 asked for in its Retry-After
	// header, when the client did not wait it (too long, or retried
	// enough already); zero otherwise.
	RetryAfter time.Duration `json:"-"`
}

// Error returns the detail: it is written for the person who made the
// request and already says what to fix. A wait asked for in Retry-After
// is added, since the detail refers to that header, which they never see.
func (e *APIError) Error() string {
	msg := e.Detail
	if msg == "" {
		msg = fmt.Sprintf("%d %s", e.Status, e.Title)
	}
	if e.RetryAfter > 0 {
		msg += fmt.Sprintf(" (Retry-After: %s)", e.RetryAfter)
	}
	return msg
}

// Webhook is OrganizationWebhookResponse.
type Webhook struct {
	ID                     string    `json:"id"`
	CreatedAt              time.Time `json:"created_at"`
	UpdatedAt              time.Time `json:"updated_at"`
	Kind                   string    `json:"kind"`
	TargetURL              string    `json:"target_url"`
	TargetSecretSet        bool      `json:"target_secret_set"`
	Description            string    `json:"description"`
	Enabled                bool      `json:"enabled"`
	Events                 []string  `json:"events"`
	ProjectNamesFilter     []string  `json:"project_names_filter"`
	EnvironmentTypesFilter []string  `json:"environment_types_filter"`
	DisabledReason         string    `json:"disabled_reason"`
	// FailingSince is when the failures under way began; nil while healthy.
	FailingSince *time.Time `json:"failing_since"`
	// PreviousSecretExpiresAt, during a secret's rotation grace, is when
	// deliveries stop carrying a signature with the previous secret too.
	PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at"`
	// SecretsUnreadable: the server cannot decrypt the target URL and
	// secret (their key is not in its HOOKD_ENCRYPTION_KEY); TargetURL is
	// then a placeholder and TargetSecretSet false, whatever is stored.
	SecretsUnreadable bool `json:"secrets_unreadable"`

	// Raw is the object as the server sent it, for callers that must pass
	// it on unchanged (fields this client does not know included).
	Raw json.RawMessage `json:"-"`
	// ETag is the version GetWebhook and EditWebhook read (their ETag
	// header); empty from a list.
	ETag string `json:"-"`
}

// readHeader keeps the answer's ETag.
func (w *Webhook) readHeader(h http.Header) { w.ETag = h.Get("ETag") }

func (w *Webhook) UnmarshalJSON(b []byte) error {
	type plain Webhook // without this method, so Unmarshal does not recurse
	return keepRaw(b, (*plain)(w), &w.Raw)
}

// Request returns the request that would store w as it is, the starting
// point of a full-replace edit. Its nil TargetSecret and nil Enabled keep
// what is stored when the edit commits, so an edit started from a read
// never brings back a secret removed or re-enables a webhook disabled
// since (by a person, or by hookd after a 410); and it is made only if
// the webhook is still the version read (IfMatch), so it never undoes
// another edit either.
func (w *Webhook) Request() WebhookRequest {
	return WebhookRequest{
		IfMatch:                w.ETag,
		Kind:                   w.Kind,
		TargetURL:              w.TargetURL,
		Description:            w.Description,
		Events:                 nonNil(w.Events),
		ProjectNamesFilter:     nonNil(w.ProjectNamesFilter),
		EnvironmentTypesFilter: nonNil(w.EnvironmentTypesFilter),
	}
}

// WebhookRequest is OrganizationWebhookCreateRequest, also the body of an
// edit, which replaces every field.
type WebhookRequest struct {
	Kind      string `json:"kind"`
	TargetURL string `json:"target_url"`
	// TargetSecret nil keeps the stored secret on edit (none on create);
	// a pointer to "" removes it.
	TargetSecret *string `json:"target_secret,omitempty"`
	Description  string  `json:"description"`
	// Enabled nil means true on create and unchanged on edit.
	Enabled                *bool    `json:"enabled,omitempty"`
	Events                 []string `json:"events"`
	ProjectNamesFilter     []string `json:"project_names_filter"`
	EnvironmentTypesFilter []string `json:"environment_types_filter"`
	// IfMatch, on edit, is the ETag of the version the edit was made
	// from: the server refuses it (412) if the webhook changed since.
	// Empty: the edit is made whatever changed.
	IfMatch string `json:"-"`
}

// WebhookList is the answer of listWebhooks.
type WebhookList struct {
	Results []Webhook       `json:"results"`
	Raw     json.RawMessage `json:"-"` // the whole answer, as sent
}

func (l *WebhookList) UnmarshalJSON(b []byte) error {
	type plain WebhookList
	return keepRaw(b, (*plain)(l), &l.Raw)
}

// WebhookEvent is WebhookEventResponse: one delivery attempt.
type WebhookEvent struct {
	ID                       string          `json:"id"`
	CreatedAt                time.Time       `json:"created_at"`
	Kind                     string          `json:"kind"`
	MatchedEvent             string          `json:"matched_event"`
	TargetURLUsed            string          `json:"target_url_used"`
	Request                  json.RawMessage `json:"request"`
	TargetResponseStatusCode int             `json:"target_response_status_code"`
	TargetResponseBody       string          `json:"target_response_body"`
	DeliveryID               string          `json:"delivery_id"`
	Attempt                  int             `json:"attempt"`
	DurationMS               int64           `json:"duration_ms"`
	Error                    string          `json:"error"`
}

// WebhookEventList is the answer of listWebhookEvent, newest first.
type WebhookEventList struct {
	Results []WebhookEvent  `json:"results"`
	Raw     json.RawMessage `json:"-"` // the whole answer, as sent
}

func (l *WebhookEventList) UnmarshalJSON(b []byte) error {
	type plain WebhookEventList
	return keepRaw(b, (*plain)(l), &l.Raw)
}

// Delivery is WebhookDelivery: one event on its way to one webhook.
type Delivery struct {
	ID             string     `json:"id"`
	WebhookID      string     `json:"webhook_id"`
	EventID        string     `json:"event_id"`
	EventType      string     `json:"event_type"`
	CreatedAt      time.Time  `json:"created_at"`
	UpdatedAt      time.Time  `json:"updated_at"`
	Status         string     `json:"status"`
	Attempts       int        `json:"attempts"`
	LastStatusCode int        `json:"last_status_code"`
	LastError      string     `json:"last_error"`
	NextAttemptAt  *time.Time `json:"next_attempt_at"` // nil once the delivery is finished

	Raw json.RawMessage `json:"-"` // the object as sent
}

func (d *Delivery) UnmarshalJSON(b []byte) error {
	type plain Delivery
	return keepRaw(b, (*plain)(d), &d.Raw)
}

// DeliveryPage is one page of ListDeliveries.
type DeliveryPage struct {
	Results []Delivery `json:"results"`
	// NextCursor is "" on the last page; otherwise pass it back as
	// DeliveryListParams.Cursor.
	NextCursor string          `json:"-"`
	Raw        json.RawMessage `json:"-"`
}

func (p *DeliveryPage) UnmarshalJSON(b []byte) (err error) {
	p.Results, p.NextCursor, p.Raw, err = decodePage[Delivery](b)
	return err
}

// decodePage reads one page of a cursor-paginated list: its results, its
// next cursor ("" on the last page) and the answer as it came.
func decodePage[T any](b []byte) ([]T, string, json.RawMessage, error) {
	var page struct {
		Results    []T     `json:"results"`
		NextCursor *string `json:"next_cursor"`
	}
	if err := json.Unmarshal(b, &page); err != nil {
		return nil, "", nil, err
	}
	var next string
	if page.NextCursor != nil {
		next = *page.NextCursor
	}
	return page.Results, next, append(json.RawMessage(nil), b...), nil
}

// DeliveryListParams narrows ListDeliveries; zero values mean the
// server's defaults (every status, first page, 50 deliveries).
type DeliveryListParams struct {
	Status string // pending, running, succeeded or failed
	Cursor string
	Limit  int
}

// DeploymentEvent is the body of EmitDeploymentEvent built field by field;
// callers with a whole document can send it as json.RawMessage instead.
type DeploymentEvent struct {
	EventType     string                `json:"event_type"`
	DeploymentID  string                `json:"deployment_id,omitempty"`
	CurrentStatus string                `json:"current_status,omitempty"`
	DesiredStatus string                `json:"desired_status,omitempty"`
	Project       DeploymentProject     `json:"project"`
	Environment   DeploymentEnvironment `json:"environment"`
	Applications  json.RawMessage       `json:"applications,omitempty"`
	Databases     json.RawMessage       `json:"databases,omitempty"`
	Containers    json.RawMessage       `json:"containers,omitempty"`
	Jobs          json.RawMessage       `json:"jobs,omitempty"`
	Logs          json.RawMessage       `json:"logs,omitempty"`
}

type DeploymentProject struct {
	ID   string `json:"id,omitempty"`
	Name string `json:"name"`
}

type DeploymentEnvironment struct {
	ID          string `json:"id,omitempty"`
	Name        string `json:"name"`
	Mode        string `json:"mode"`
	ClusterName string `json:"cluster_name,omitempty"`
}

// EventAccepted is the answer of EmitDeploymentEvent: the event is stored
// with one delivery per matching webhook.
type EventAccepted struct {
	ID         string          `json:"id"`
	CreatedAt  time.Time       `json:"created_at"`
	Deliveries int             `json:"deliveries"`
	Raw        json.RawMessage `json:"-"`
}

func (a *EventAccepted) UnmarshalJSON(b []byte) error {
	type plain EventAccepted
	return keepRaw(b, (*plain)(a), &a.Raw)
}

// RecoverRequest is WebhookRecoverRequest: the failed deliveries created
// in [Since, Until) (Until "" is now) whose last answer matches Status
// ("" for any; 503, 5xx or none) are re-queued, and with Pending those
// waiting for a retry are made due now.
type RecoverRequest struct {
	Since   string `json:"since"`
	Until   string `json:"until,omitempty"`
	Status  string `json:"status,omitempty"`
	Pending bool   `json:"pending,omitempty"`
}

// Recovered is the answer of RecoverWebhook: Deliveries in all, Failed
// plus Pending.
type Recovered struct {
	Deliveries int             `json:"deliveries"`
	Failed     int             `json:"failed"`
	Pending    int             `json:"pending"`
	Since      time.Time       `json:"since"`
	Until      time.Time       `json:"until"`
	Raw        json.RawMessage `json:"-"`
}

func (r *Recovered) UnmarshalJSON(b []byte) error {
	type plain Recovered
	return keepRaw(b, (*plain)(r), &r.Raw)
}

// WebhookStats is the answer of GetWebhookStats.
type WebhookStats struct {
	Last24Hours WindowStats     `json:"last_24_hours"`
	Last7Days   WindowStats     `json:"last_7_days"`
	Raw         json.RawMessage `json:"-"`
}

func (s *WebhookStats) UnmarshalJSON(b []byte) error {
	type plain WebhookStats
	return keepRaw(b, (*plain)(s), &s.Raw)
}

// WindowStats is WebhookWindowStats; the pointers are nil without attempts.
type WindowStats struct {
	Since       time.Time     `json:"since"`
	Until       time.Time     `json:"until"`
	Attempts    int           `json:"attempts"`
	Failures    int           `json:"failures"`
	SuccessRate *float64      `json:"success_rate"`
	P50MS       *float64      `json:"p50_ms"`
	P95MS       *float64      `json:"p95_ms"`
	Buckets     []StatsBucket `json:"buckets"`
}

type StatsBucket struct {
	Start    time.Time `json:"start"`
	Attempts int       `json:"attempts"`
	Failures int       `json:"failures"`
}

// AuditEntry is one change in the organization's audit trail.
type AuditEntry struct {
	ID        string    `json:"id"`
	CreatedAt time.Time `json:"created_at"`
	Action    string    `json:"action"`
	Actor     struct {
		Kind string `json:"kind"`
		ID   string `json:"id"`
	} `json:"actor"`
	ResourceType string `json:"resource_type"`
	ResourceID   string `json:"resource_id"`
	ResourceName string `json:"resource_name"`
	Changes      []struct {
		Field  string          `json:"field"`
		Before json.RawMessage `json:"before"`
		After  json.RawMessage `json:"after"`
		Secret string          `json:"secret"`
	} `json:"changes"`
}

// AuditPage is one page of ListAudit, newest first.
type AuditPage struct {
	Results    []AuditEntry
	NextCursor string // "" on the last page
	Raw        json.RawMessage
}

func (p *AuditPage) UnmarshalJSON(b []byte) (err error) {
	p.Results, p.NextCursor, p.Raw, err = decodePage[AuditEntry](b)
	return err
}

// TestResult is the answer of TestWebhook.
type TestResult struct {
	EventID    string          `json:"event_id"`
	DeliveryID string          `json:"delivery_id"`
	Raw        json.RawMessage `json:"-"`
}

func (r *TestResult) UnmarshalJSON(b []byte) error {
	type plain TestResult
	return keepRaw(b, (*plain)(r), &r.Raw)
}

func (c *Client) ListWebhooks(ctx context.Context, org string) (*WebhookList, error) {
	var out WebhookList
	return &out, c.do(ctx, http.MethodGet, orgPath(org, "webhook"), nil, nil, &out)
}

func (c *Client) GetWebhook(ctx context.Context, org, id string) (*Webhook, error) {
	var out Webhook
	return &out, c.do(ctx, http.MethodGet, orgPath(org, "webhook", id), nil, nil, &out)
}

func (c *Client) CreateWebhook(ctx context.Context, org string, req WebhookRequest) (*Webhook, error) {
	var out Webhook
	return &out, c.do(ctx, http.MethodPost, orgPath(org, "webhook"), nil, req, &out)
}

// EditWebhook replaces every field of the webhook with req: start from
// Webhook.Request to change only some.
func (c *Client) EditWebhook(ctx context.Context, org, id string, req WebhookRequest) (*Webhook, error) {
	var out Webhook
	var header http.Header
	if req.IfMatch != "" {
		header = http.Header{"If-Match": {req.IfMatch}}
	}
	return &out, c.do(ctx, http.MethodPut, orgPath(org, "webhook", id), header, req, &out)
}

func (c *Client) DeleteWebhook(ctx context.Context, org, id string) error {
	return c.do(ctx, http.MethodDelete, orgPath(org, "webhook", id), nil, nil, nil)
}

// ListWebhookEvents returns the webhook's latest delivery attempts
// (Qovery's listWebhookEvent).
func (c *Client) ListWebhookEvents(ctx context.Context, org, id string) (*WebhookEventList, error) {
	var out WebhookEventList
	return &out, c.do(ctx, http.MethodGet, orgPath(org, "webhook", id, "event"), nil, nil, &out)
}

func (c *Client) ListDeliveries(ctx context.Context, org, webhookID string, p DeliveryListParams) (*DeliveryPage, error) {
	q := pageQuery(p.Cursor, p.Limit)
	if p.Status != "" {
		q.Set("status", p.Status)
	}
	var out DeliveryPage
	return &out, c.do(ctx, http.MethodGet, withQuery(orgPath(org, "webhook", webhookID, "delivery"), q), nil, nil, &out)
}

// RetryDelivery makes a delivery due now for one more attempt.
func (c *Client) RetryDelivery(ctx context.Context, org, webhookID, deliveryID string) (*Delivery, error) {
	var out Delivery
	return &out, c.do(ctx, http.MethodPost, orgPath(org, "webhook", webhookID, "delivery", deliveryID, "retry"), nil, nil, &out)
}

// TestWebhook sends a sample event to this webhook alone.
func (c *Client) TestWebhook(ctx context.Context, org, id string) (*TestResult, error) {
	var out TestResult
	return &out, c.do(ctx, http.MethodPost, orgPath(org, "webhook", id, "test"), nil, nil, &out)
}

// ListAudit returns a page of the organization's audit trail; cursor ""
// and limit 0 are the server's defaults (the newest, 50 entries).
func (c *Client) ListAudit(ctx context.Context, org, cursor string, limit int) (*AuditPage, error) {
	var out AuditPage
	return &out, c.do(ctx, http.MethodGet, withQuery(orgPath(org, "audit"), pageQuery(cursor, limit)), nil, nil, &out)
}

// pageQuery is the query of a paginated list; "" and 0 are left out for
// the server's defaults.
func pageQuery(cursor string, limit int) url.Values {
	q := url.Values{}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	if limit != 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	return q
}

func withQuery(path string, q url.Values) string {
	if len(q) == 0 {
		return path
	}
	return path + "?" + q.Encode()
}

// RecoverWebhook re-queues the webhook's failed deliveries of a window
// (and, on request, its pending ones waiting for a retry).
func (c *Client) RecoverWebhook(ctx context.Context, org, id string, req RecoverRequest) (*Recovered, error) {
	var out Recovered
	return &out, c.do(ctx, http.MethodPost, orgPath(org, "webhook", id, "recover"), nil, req, &out)
}

// GetWebhookStats returns the webhook's health over the last 24 hours and 7 days.
func (c *Client) GetWebhookStats(ctx context.Context, org, id string) (*WebhookStats, error) {
	var out WebhookStats
	return &out, c.do(ctx, http.MethodGet, orgPath(org, "webhook", id, "stats"), nil, nil, &out)
}

// EmitDeploymentEvent posts a deployment event: a DeploymentEvent, or a
// json.RawMessage sent byte for byte so the server judges the document
// as written. A non-empty idempotencyKey makes a repeated call answer
// with the first event instead of storing a second one.
func (c *Client) EmitDeploymentEvent(ctx context.Context, org string, event any, idempotencyKey string) (*EventAccepted, error) {
	h := http.Header{}
	if idempotencyKey != "" {
		h.Set("Idempotency-Key", idempotencyKey)
	}
	var out EventAccepted
	return &out, c.do(ctx, http.MethodPost, orgPath(org, "deployment-event"), h, event, &out)
}

// orgPath joins escaped path segments under the organization, so an id
// typed by a person can never change which resource is addressed.
func orgPath(org string, segments ...string) string {
	var b strings.Builder
	b.WriteString("/organization/" + url.PathEscape(org))
	for _, s := range segments {
		b.WriteString("/" + url.PathEscape(s))
	}
	return b.String()
}

// maxAnswer bounds what is read of an answer; the API's largest (a page of
// attempts with their rendered requests) is far smaller.
const maxAnswer = 64 << 20

// headerReader is an answer that keeps some of the answer's header.
type headerReader interface{ readHeader(http.Header) }

// do sends one request and decodes a 2xx answer into out (when not nil;
// a headerReader also sees its header) or any other answer into an
// *APIError.
func (c *Client) do(ctx context.Context, method, path string, header http.Header, body, out any) error {
	var b []byte
	if body != nil {
		var ok bool
		if b, ok = body.(json.RawMessage); !ok {
			var err error
			if b, err = json.Marshal(body); err != nil {
				return err
			}
		}
	}
	for try := 0; ; try++ {
		status, respHeader, data, wait, err := c.send(ctx, method, path, header, body != nil, b)
		if err != nil {
			return err
		}
		if status >= 200 && status <= 299 {
			if out == nil {
				return nil
			}
			if err := json.Unmarshal(data, out); err != nil {
				return fmt.Errorf("%s %s: the server answered %d with a body that is not the expected JSON: %w", method, path, status, err)
			}
			if hr, ok := out.(headerReader); ok {
				hr.readHeader(respHeader)
			}
			return nil
		}
		if wait <= 0 || wait > c.MaxRetryAfter || try >= c.Retries {
			e := newAPIError(status, data)
			e.RetryAfter = wait
			return e
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			e := newAPIError(status, data)
			e.RetryAfter = wait
			return e
		case <-t.C:
		}
	}
}

// send makes one request and returns the answer's status, header and
// body, and how long to wait before sending it again when the answer is a
// 429 or a 503 with a Retry-After in seconds (zero otherwise).
func (c *Client) send(ctx context.Context, method, path string, header http.Header, hasBody bool, body []byte) (int, http.Header, []byte, time.Duration, error) {
	var r io.Reader
	if hasBody {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, r)
	if err != nil {
		return 0, nil, nil, 0, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Accept", "application/json")
	if hasBody {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.auth != "" {
		req.Header.Set("Authorization", c.auth)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, nil, 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return 0, nil, nil, 0, fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	var wait time.Duration
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			wait = time.Duration(s) * time.Second
		}
	}
	return resp.StatusCode, resp.Header, data, wait, nil
}

// newAPIError decodes the API's error body. Something in between (a proxy,
// a server that is not hookd) may answer otherwise: its status and the
// start of its body still say more than a decoding error would.
func newAPIError(status int, body []byte) *APIError {
	var e APIError
	if json.Unmarshal(body, &e) == nil && e.Detail != "" {
		if e.Status == 0 {
			e.Status = status
		}
		return &e
	}
	e = APIError{Status: status, Title: http.StatusText(status)}
	text := strings.TrimSpace(string(body))
	if len(text) > 200 {
		text = text[:200] + "…"
	}
	e.Detail = fmt.Sprintf("the server answered %d %s", status, e.Title)
	if text != "" {
		e.Detail += ": " + text
	}
	return &e
}

func keepRaw(b []byte, v any, raw *json.RawMessage) error {
	if err := json.Unmarshal(b, v); err != nil {
		return err
	}
	*raw = append(json.RawMessage(nil), b...)
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

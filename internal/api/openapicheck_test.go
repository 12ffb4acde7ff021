package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// openAPIChecker checks responses against openapi.yaml: the API tests pass
// every response they get through Check, so the document cannot drift
// from what the server answers.
type openAPIChecker struct {
	doc    *openapi3.T
	router routers.Router
	opts   *openapi3filter.Options
}

// loadOpenAPIChecker parses and validates the document once per test
// binary; the checker is read-only afterwards, so tests share it.
var loadOpenAPIChecker = sync.OnceValues(func() (*openAPIChecker, error) {
	doc, err := openapi3.NewLoader().LoadFromData(openAPIDocument)
	if err != nil {
		return nil, fmt.Errorf("openapi.yaml does not parse: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("openapi.yaml is not a valid OpenAPI document: %w", err)
	}
	// Formats kin-openapi does not check by itself, scoped to this
	// document rather than registered globally.
	doc.SetStringFormatValidator("uuid", openapi3.NewRegexpFormatValidator(
		`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`))
	// A URI is absolute (RFC 3986), and a web address has a host: an
	// unreadable target URL is urn:hookd:unreadable, with none.
	doc.SetStringFormatValidator("uri", openapi3.NewCallbackValidator(func(s string) error {
		u, err := url.Parse(s)
		if err != nil || !u.IsAbs() || (u.Scheme == "http" || u.Scheme == "https") && u.Host == "" {
			return errors.New("not an absolute URI")
		}
		return nil
	}))
	router, err := legacy.NewRouter(doc)
	if err != nil {
		return nil, err
	}
	return &openAPIChecker{
		doc:    doc,
		router: router,
		opts: &openapi3filter.Options{
			// Only the response is checked: the request's credentials
			// are the server's business, not the document's.
			AuthenticationFunc:    openapi3filter.NoopAuthenticationFunc,
			IncludeResponseStatus: true,
			MultiError:            true,
			// The error names the field and the rule; the schema dumped
			// after it would bury that.
			SchemaValidationOptions: append(doc.GetSchemaValidationOptions(), openapi3.DisableSchemaErrorDetails()),
		},
	}, nil
})

// newOpenAPIChecker returns the checker, failing the test if openapi.yaml
// is not a valid OpenAPI document.
func newOpenAPIChecker(t testing.TB) *openAPIChecker {
	t.Helper()
	c, err := loadOpenAPIChecker()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Check reports an error on t unless the response (status, header, body)
// to req is one the document describes for req's operation.
func (c *openAPIChecker) Check(t testing.TB, req *http.Request, status int, header http.Header, body []byte) {
	t.Helper()
	if err := c.validate(req, status, header, body); err != nil {
		t.Errorf("openapi.yaml: %s %s answered %d: %v\nbody: %.1000s", req.Method, req.URL.Path, status, err, body)
	}
}

// Documented lists every operation of the document as "METHOD /path",
// sorted, in the form of the ServeMux patterns in routes.go.
func (c *openAPIChecker) Documented() []string {
	var ops []string
	for path, item := range c.doc.Paths.Map() {
		for method := range item.Operations() {
			ops = append(ops, method+" "+path)
		}
	}
	slices.Sort(ops)
	return ops
}

// validate returns why the response does not match the document, or nil.
//
// A request to an undocumented path or method is an error, with two
// exceptions that are still checked: a 404 for an unknown path and a 405
// for a documented path's undocumented method must be the document's
// NotFound and MethodNotAllowed responses.
func (c *openAPIChecker) validate(req *http.Request, status int, header http.Header, body []byte) error {
	route, params, err := c.router.FindRoute(req)
	if err != nil {
		var fallback string
		switch {
		case c.pathDocumented(req):
			if status != http.StatusMethodNotAllowed {
				return fmt.Errorf("%s is not documented for %s", req.Method, req.URL.Path)
			}
			fallback = "MethodNotAllowed"
		case status == http.StatusNotFound:
			fallback = "NotFound"
		default:
			return fmt.Errorf("no documented path matches %s", req.URL.Path)
		}
		route = &routers.Route{
			Spec:   c.doc,
			Path:   req.URL.Path,
			Method: req.Method,
			Operation: &openapi3.Operation{
				Responses: openapi3.NewResponses(openapi3.WithStatus(status, c.doc.Components.Responses[fallback])),
			},
		}
	}

	if resp := route.Operation.Responses.Status(status); resp != nil && len(resp.Value.Content) == 0 && len(bytes.TrimSpace(body)) > 0 {
		return fmt.Errorf("status %d is documented without a body, but the response has one: %.200q", status, body)
	}
	if header == nil {
		header = http.Header{}
	}
	input := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request:    req,
			PathParams: params,
			Route:      route,
			Options:    c.opts,
		},
		Status:  status,
		Header:  header,
		Body:    io.NopCloser(bytes.NewReader(body)),
		Options: c.opts,
	}
	return openapi3filter.ValidateResponse(req.Context(), input)
}

// pathDocumented reports whether any method is documented for req's path.
// The legacy router cannot tell an unknown method on a templated path from
// an unknown path, so every method is tried.
func (c *openAPIChecker) pathDocumented(req *http.Request) bool {
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodHead, http.MethodOptions} {
		r := req.Clone(req.Context())
		r.Method = m
		if _, _, err := c.router.FindRoute(r); err == nil {
			return true
		}
	}
	return false
}

func TestOpenAPIDocumentIsValid(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(openAPIDocument)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestOpenAPIDocumentOperations pins the operations, their Qovery
// operationIds, and the errors every organization operation documents.
func TestOpenAPIDocumentOperations(t *testing.T) {
	c := newOpenAPIChecker(t)
	want := map[string]string{
		"GET /organization/{organizationId}/webhook":                                          "listOrganizationWebHooks",
		"POST /organization/{organizationId}/webhook":                                         "createOrganizationWebhook",
		"GET /organization/{organizationId}/webhook/{webhookId}":                              "getOrganizationWebhook",
		"PUT /organization/{organizationId}/webhook/{webhookId}":                              "editOrganizationWebhook",
		"DELETE /organization/{organizationId}/webhook/{webhookId}":                           "deleteOrganizationWebhook",
		"GET /organization/{organizationId}/webhook/{webhookId}/event":                        "listWebhookEvent",
		"POST /organization/{organizationId}/deployment-event":                                "createDeploymentEvent",
		"GET /organization/{organizationId}/webhook/{webhookId}/delivery":                     "listWebhookDeliveries",
		"POST /organization/{organizationId}/webhook/{webhookId}/delivery/{deliveryId}/retry": "retryWebhookDelivery",
		"POST /organization/{organizationId}/webhook/{webhookId}/test":                        "testOrganizationWebhook",
		"POST /organization/{organizationId}/webhook/{webhookId}/recover":                     "recoverWebhookDeliveries",
		"GET /organization/{organizationId}/webhook/{webhookId}/stats":                        "getWebhookStats",
		"GET /organization/{organizationId}/audit":                                            "listOrganizationAudit",
		"GET /organization/{organizationId}/source":                                           "listSources",
		"POST /organization/{organizationId}/source":                                          "createSource",
		"GET /organization/{organizationId}/source/{sourceId}":                                "getSource",
		"PUT /organization/{organizationId}/source/{sourceId}":                                "editSource",
		"DELETE /organization/{organizationId}/source/{sourceId}":                             "deleteSource",
		"POST /organization/{organizationId}/source/{sourceId}/ingest":                        "ingestSource",
		"GET /healthz":      "getHealth",
		"GET /readyz":       "getReadiness",
		"GET /openapi.yaml": "getOpenAPIDocument",
		"GET /metrics":      "getMetrics",
	}
	got := c.Documented()
	if len(got) != len(want) {
		t.Errorf("Documented() = %q, want the %d operations of the test", got, len(want))
	}
	for _, op := range got {
		method, path, _ := strings.Cut(op, " ")
		o := c.doc.Paths.Value(path).GetOperation(method)
		if o.OperationID != want[op] {
			t.Errorf("%s: operationId %q, want %q", op, o.OperationID, want[op])
		}
		// A source's ingest URL takes the tool's signature, not an API token.
		ingest := strings.HasSuffix(path, "/ingest")
		if !strings.HasPrefix(path, "/organization/") || ingest {
			if o.Security == nil || len(*o.Security) != 0 {
				t.Errorf("%s: must not require authentication", op)
			}
			if !ingest {
				continue
			}
		} else if o.Security != nil {
			t.Errorf("%s: must use the document's security requirement", op)
		}
		statuses := []int{400, 401, 403, 429, 500, 503}
		if ingest {
			statuses = []int{400, 401, 429, 500, 503}
		}
		for _, status := range statuses {
			r := o.Responses.Status(status)
			if r == nil {
				t.Errorf("%s: does not document %d", op, status)
				continue
			}
			if r.Value.Content.Get("application/json").Schema.Ref != "#/components/schemas/Error" {
				t.Errorf("%s: %d is not an Error", op, status)
			}
		}
		if o.RequestBody != nil && o.Responses.Status(413) == nil {
			t.Errorf("%s: takes a body but does not document 413", op)
		}
		if (strings.Contains(path, "{webhookId}") || strings.Contains(path, "{sourceId}")) && o.Responses.Status(404) == nil {
			t.Errorf("%s: does not document 404", op)
		}
	}
}

func TestOpenAPICheckerValidate(t *testing.T) {
	c := newOpenAPIChecker(t)
	const (
		org     = "0190f5e4-7c2a-7d4b-9a8e-3b1c2d4e5f60"
		hook    = "0190f5e4-7c2a-7d4b-9a8e-3b1c2d4e5f61"
		deliv   = "0190f5e4-7c2a-7d4b-9a8e-3b1c2d4e5f62"
		webhook = `{"id":"` + hook + `","created_at":"2025-01-02T03:04:05.123456Z","updated_at":"2025-01-02T03:04:05Z",` +
			`"kind":"STANDARD","target_url":"https://example.com/hook","target_secret_set":true,"description":"",` +
			`"enabled":true,"events":["DEPLOYMENT_STARTED"],"project_names_filter":["api-*"],` +
			`"environment_types_filter":[],"disabled_reason":""}`
		delivery = `{"id":"` + deliv + `","webhook_id":"` + hook + `","event_id":"` + deliv + `","event_type":"DEPLOYMENT_FAILURE",` +
			`"created_at":"2025-01-02T03:04:05Z","updated_at":"2025-01-02T03:04:05Z","status":"failed","attempts":3,` +
			`"last_status_code":0,"last_error":"connection refused","next_attempt_at":null}`
		errBody = `{"status":404,"error":"Not Found","detail":"no such webhook"}`
		tooMany = `{"status":429,"error":"Too Many Requests","detail":"too many requests"}`
	)
	jsonHeader := http.Header{"Content-Type": {"application/json"}}
	tests := []struct {
		name    string
		method  string
		path    string
		status  int
		header  http.Header
		body    string
		wantErr string // "" when the response is valid
	}{
		{"get webhook", "GET", "/organization/" + org + "/webhook/" + hook, 200, jsonHeader, webhook, ""},
		{"charset in content type", "GET", "/organization/" + org + "/webhook/" + hook, 200,
			http.Header{"Content-Type": {"application/json; charset=utf-8"}}, webhook, ""},
		{"list webhooks", "GET", "/organization/" + org + "/webhook", 200, jsonHeader, `{"results":[` + webhook + `]}`, ""},
		{"create webhook", "POST", "/organization/" + org + "/webhook", 201, jsonHeader, webhook, ""},
		{"delete webhook", "DELETE", "/organization/" + org + "/webhook/" + hook, 204, http.Header{}, "", ""},
		{"list deliveries", "GET", "/organization/" + org + "/webhook/" + hook + "/delivery?status=failed&limit=10", 200, jsonHeader,
			`{"results":[` + delivery + `],"next_cursor":null}`, ""},
		{"error body", "GET", "/organization/" + org + "/webhook/" + hook, 404, jsonHeader, errBody, ""},
		{"health", "GET", "/healthz", 200, jsonHeader, `{"status":"ok"}`, ""},
		{"metrics", "GET", "/metrics", 200, http.Header{"Content-Type": {"text/plain; version=0.0.4; charset=utf-8"}}, "up 1\n", ""},
		{"document", "GET", "/openapi.yaml", 200, http.Header{"Content-Type": {"application/yaml"}}, string(openAPIDocument), ""},
		{"unknown path 404", "GET", "/nope", 404, jsonHeader, errBody, ""},
		{"429 with Retry-After", "GET", "/organization/" + org + "/webhook", 429,
			http.Header{"Content-Type": {"application/json"}, "Retry-After": {"2"}}, tooMany, ""},
		{"409 on create", "POST", "/organization/" + org + "/webhook", 409, jsonHeader,
			`{"status":409,"error":"Conflict","detail":"the organization has 100 webhooks"}`, ""},
		{"method not allowed 405", "PATCH", "/organization/" + org + "/webhook/" + hook, 405,
			http.Header{"Content-Type": {"application/json"}, "Allow": {"GET, PUT, DELETE"}},
			`{"status":405,"error":"Method Not Allowed","detail":"PATCH is not allowed"}`, ""},

		{"missing required field", "GET", "/organization/" + org + "/webhook/" + hook, 200, jsonHeader,
			strings.Replace(webhook, `"target_secret_set":true,`, "", 1), "target_secret_set"},
		{"enum value", "GET", "/organization/" + org + "/webhook/" + hook, 200, jsonHeader,
			strings.Replace(webhook, `"STANDARD"`, `"standard"`, 1), "kind"},
		{"uuid format", "GET", "/organization/" + org + "/webhook/" + hook, 200, jsonHeader,
			strings.Replace(webhook, hook, "not-a-uuid", 1), "uuid"},
		{"date-time format", "GET", "/organization/" + org + "/webhook/" + hook, 200, jsonHeader,
			strings.Replace(webhook, "2025-01-02T03:04:05Z", "yesterday", 1), "updated_at"},
		{"null cursor missing", "GET", "/organization/" + org + "/webhook/" + hook + "/delivery", 200, jsonHeader,
			`{"results":[]}`, "next_cursor"},
		{"malformed JSON", "GET", "/organization/" + org + "/webhook/" + hook, 200, jsonHeader, `{"id":`, "decode"},
		{"wrong content type", "GET", "/organization/" + org + "/webhook/" + hook, 200, http.Header{"Content-Type": {"text/plain"}}, webhook, "text/plain"},
		{"undocumented status", "GET", "/organization/" + org + "/webhook/" + hook, 418, jsonHeader, errBody, "status"},
		{"body on 204", "DELETE", "/organization/" + org + "/webhook/" + hook, 204, jsonHeader, errBody, "without a body"},
		{"bad error body", "GET", "/organization/" + org + "/webhook/" + hook, 404, jsonHeader, `{"message":"not found"}`, "status"},
		{"plain-text 405", "PATCH", "/organization/" + org + "/webhook", 405,
			http.Header{"Content-Type": {"text/plain; charset=utf-8"}}, "Method Not Allowed\n", "text/plain"},
		{"undocumented method", "PATCH", "/organization/" + org + "/webhook", 200, jsonHeader, webhook, "not documented"},
		{"undocumented path", "GET", "/organization/" + org + "/widget", 200, jsonHeader, `{}`, "no documented path"},
		{"429 without Retry-After", "GET", "/organization/" + org + "/webhook", 429, jsonHeader, tooMany, "Retry-After"},
		{"503 with Retry-After 0", "POST", "/organization/" + org + "/deployment-event", 503,
			http.Header{"Content-Type": {"application/json"}, "Retry-After": {"0"}},
			`{"status":503,"error":"Service Unavailable","detail":"busy"}`, "Retry-After"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, tt.path, nil)
			err := c.validate(req, tt.status, tt.header, []byte(tt.body))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("valid response reported: %v", err)
			case tt.wantErr != "" && err == nil:
				t.Errorf("invalid response not reported (want an error mentioning %q)", tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Errorf("error %q does not mention %q", err, tt.wantErr)
			}
		})
	}
}

// TestOpenAPICheckerCheck makes sure Check reports through t: silent on a
// valid response, an error on an invalid one.
func TestOpenAPICheckerCheck(t *testing.T) {
	c := newOpenAPIChecker(t)
	req := httptest.NewRequest("GET", "/readyz", nil)
	header := http.Header{"Content-Type": {"application/json"}}

	c.Check(t, req, 200, header, []byte(`{"status":"ok"}`))

	var rec recordingTB
	c.Check(&rec, req, 200, header, []byte(`{"status":"starting"}`))
	if !rec.failed {
		t.Error("Check did not report a body outside the schema")
	}
}

// recordingTB records whether a test would have failed.
type recordingTB struct {
	testing.TB
	failed bool
}

func (r *recordingTB) Helper()               {}
func (r *recordingTB) Errorf(string, ...any) { r.failed = true }
func (r *recordingTB) Fatalf(string, ...any) { r.failed = true }
func (r *recordingTB) Error(...any)          { r.failed = true }
func (r *recordingTB) Fatal(...any)          { r.failed = true }

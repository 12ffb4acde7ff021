package client

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// EnvironmentRule maps a tool's environment names to an environment type.
type EnvironmentRule struct {
	Pattern string `json:"pattern"`
	Type    string `json:"type"`
}

// Source is SourceResponse: a tool that reports deployments to hookd.
type Source struct {
	ID               string            `json:"id"`
	CreatedAt        time.Time         `json:"created_at"`
	UpdatedAt        time.Time         `json:"updated_at"`
	Kind             string            `json:"kind"`
	Name             string            `json:"name"`
	SecretSet        bool              `json:"secret_set"`
	EnvironmentTypes []EnvironmentRule `json:"environment_types"`
	IngestURL        string            `json:"ingest_url"`
	// SecretUnreadable: the server cannot decrypt the secret (its key is
	// not in its HOOKD_ENCRYPTION_KEY); SecretSet is then false.
	SecretUnreadable bool `json:"secret_unreadable"`

	Raw json.RawMessage `json:"-"` // the object as the server sent it
	// ETag is the version GetSource and EditSource read (their ETag
	// header); empty from a list.
	ETag string `json:"-"`
}

// readHeader keeps the answer's ETag.
func (s *Source) readHeader(h http.Header) { s.ETag = h.Get("ETag") }

func (s *Source) UnmarshalJSON(b []byte) error {
	type plain Source
	return keepRaw(b, (*plain)(s), &s.Raw)
}

// Request returns the request that would store s as it is; its nil Secret
// keeps the stored one, and it is made only if the source is still the
// version read (IfMatch), so it never undoes another edit.
func (s *Source) Request() SourceRequest {
	rules := s.EnvironmentTypes
	if rules == nil {
		rules = []EnvironmentRule{}
	}
	return SourceRequest{IfMatch: s.ETag, Kind: s.Kind, Name: s.Name, EnvironmentTypes: rules}
}

// SourceRequest is SourceRequest, the body of create and of an edit
// (which replaces every field but a nil Secret).
type SourceRequest struct {
	Kind             string            `json:"kind"`
	Name             string            `json:"name"`
	Secret           *string           `json:"secret,omitempty"`
	EnvironmentTypes []EnvironmentRule `json:"environment_types"`
	// IfMatch, on edit, is the ETag of the version the edit was made
	// from: the server refuses it (412) if the source changed since.
	// Empty: the edit is made whatever changed.
	IfMatch string `json:"-"`
}

// SourceList is the answer of listSources.
type SourceList struct {
	Results []Source        `json:"results"`
	Raw     json.RawMessage `json:"-"`
}

func (l *SourceList) UnmarshalJSON(b []byte) error {
	type plain SourceList
	return keepRaw(b, (*plain)(l), &l.Raw)
}

func (c *Client) ListSources(ctx context.Context, org string) (*SourceList, error) {
	var out SourceList
	return &out, c.do(ctx, http.MethodGet, orgPath(org, "source"), nil, nil, &out)
}

func (c *Client) GetSource(ctx context.Context, org, id string) (*Source, error) {
	var out Source
	return &out, c.do(ctx, http.MethodGet, orgPath(org, "source", id), nil, nil, &out)
}

func (c *Client) CreateSource(ctx context.Context, org string, req SourceRequest) (*Source, error) {
	var out Source
	return &out, c.do(ctx, http.MethodPost, orgPath(org, "source"), nil, req, &out)
}

// EditSource replaces every field of the source with req: start from
// Source.Request to change only some.
func (c *Client) EditSource(ctx context.Context, org, id string, req SourceRequest) (*Source, error) {
	var out Source
	var header http.Header
	if req.IfMatch != "" {
		header = http.Header{"If-Match": {req.IfMatch}}
	}
	return &out, c.do(ctx, http.MethodPut, orgPath(org, "source", id), header, req, &out)
}

func (c *Client) DeleteSource(ctx context.Context, org, id string) error {
	return c.do(ctx, http.MethodDelete, orgPath(org, "source", id), nil, nil, nil)
}

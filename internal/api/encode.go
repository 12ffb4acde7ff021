package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/hookd/hookd/internal/webhook"
)

// maxBody is the largest request body accepted: 1 MiB.
const maxBody = 1 << 20

// writeJSON writes v as the response body with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Only a programming error gets here: every response type marshals.
		status, b = http.StatusInternalServerError, []byte(`{"status":500,"error":"Internal Server Error","detail":"an internal error occurred"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	// Answers hold an organization's target URLs (a Slack URL is itself
	// a secret) and its targets' answers: a browser or proxy that stored
	// one would hand it out with no credentials, after the console's tab
	// signed out.
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// decode reads a JSON body of at most maxBody bytes into v, turning every
// way it can go wrong into an error that tells the caller what to fix.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	body, err := readBody(w, r)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return webhook.Errorf(webhook.EInvalid, "the request body is empty: send a JSON object")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return jsonError(err)
	}
	return nil
}

// readBody reads a request body of at most maxBody bytes.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, webhook.Errorf(webhook.ETooLarge, "the request body is larger than %d bytes", maxBody)
		}
		return nil, webhook.Errorf(webhook.EInvalid, "could not read the request body")
	}
	return body, nil
}

// jsonError explains a JSON decoding error, naming the field when the
// decoder knows it.
func jsonError(err error) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return webhook.Errorf(webhook.EInvalid, "malformed JSON at byte %d: %v", syntax.Offset, syntax)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return webhook.Errorf(webhook.EInvalid, "the request body must be a JSON object, not %s", typ.Value)
		}
		return webhook.Invalid(typ.Field, "must be %s, not %s", jsonKind(typ.Type.Kind().String()), typ.Value)
	}
	return webhook.Errorf(webhook.EInvalid, "malformed JSON: %v", err)
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "slice", "array":
		return "an array"
	case "struct", "map", "ptr":
		return "an object"
	case "int", "int64", "float64", "uint":
		return "a number"
	}
	return fmt.Sprintf("of type %s", goKind)
}

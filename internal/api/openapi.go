package api

import (
	_ "embed"
	"net/http"
)

// openAPIDocument describes every operation, schema and error of the API.
// It is served at /openapi.yaml, and the API tests check every response
// they get against it (openapicheck_test.go).
//
//go:embed openapi.yaml
var openAPIDocument []byte

func (s *Server) openAPI(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "application/yaml")
	w.Write(openAPIDocument)
	return nil
}

package api

import _ "embed"

// openAPIDocument describes every operation, schema and error of the API.
// It is served at /openapi.yaml, and the API tests check every response
// they get against it (openapicheck_test.go).
//
//go:embed openapi.yaml
var openAPIDocument []byte

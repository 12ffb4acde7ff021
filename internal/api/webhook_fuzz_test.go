package api

import (
	"bytes"
	"errors"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/hookd/hookd/internal/webhook"
)

// FuzzWebhookRequest feeds arbitrary bodies through what createWebhook
// does before touching the store: decode, then spec. Whatever the bytes,
// the outcome is a caller error (invalid or too large) or a spec that
// validates and whose lists hold no duplicates.
func FuzzWebhookRequest(f *testing.F) {
	f.Add([]byte(`{"kind":"STANDARD","target_url":"https://example.com/hook","events":["DEPLOYMENT_STARTED"]}`))
	f.Add([]byte(`{"kind":"SLACK","target_url":"http://h","target_secret":"","events":["DEPLOYMENT_FAILURE","DEPLOYMENT_FAILURE"],"project_names_filter":["a*","a*"],"environment_types_filter":["PRODUCTION","PRODUCTION"],"enabled":false}`))
	f.Add([]byte(`{"kind":null,"events":"x"}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(` `))
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest("POST", "/organization/x/webhook", bytes.NewReader(body))
		var req webhookRequest
		err := decode(httptest.NewRecorder(), r, &req)
		var spec webhook.Spec
		if err == nil {
			spec, err = req.spec()
		}
		if err != nil {
			var we *webhook.Error
			if !errors.As(err, &we) || (we.Code != webhook.EInvalid && we.Code != webhook.ETooLarge) {
				t.Fatalf("error %v (%T), want a *webhook.Error with code invalid or too_large", err, err)
			}
			return
		}
		if err := spec.Validate(); err != nil {
			t.Fatalf("spec passed spec() but not Validate: %v", err)
		}
		noDuplicates(t, "events", spec.Events)
		noDuplicates(t, "project_names_filter", spec.ProjectNamesFilter)
		noDuplicates(t, "environment_types_filter", spec.EnvironmentTypesFilter)
	})
}

func noDuplicates[T comparable](t *testing.T, field string, list []T) {
	t.Helper()
	for i, v := range list {
		if slices.Contains(list[:i], v) {
			t.Errorf("%s holds %v twice: %v", field, v, list)
		}
	}
}

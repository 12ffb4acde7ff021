package webhook

import (
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestSourceAudit(t *testing.T) {
	by := Actor{Kind: ActorCLI, ID: "root"}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	src := &Source{ID: uuid.New(), OrganizationID: uuid.New(), Kind: SourceGitHub, Name: "gh", Secret: "hunter2",
		EnvironmentTypes: []EnvironmentRule{{Pattern: "prod*", Type: ModeProduction}}}
	created := SourceAudit(by, at, nil, src)
	if created.Action != AuditSourceCreated || created.ResourceID != src.ID || created.ResourceName != "gh" || len(created.Changes) != 4 {
		t.Errorf("created = %+v", created)
	}
	same := *src
	if e := SourceAudit(by, at, src, &same); e != nil {
		t.Errorf("an edit that changes nothing is audited: %+v", e)
	}
	edited := *src
	edited.Secret, edited.EnvironmentTypes = "hunter3", nil
	e := SourceAudit(by, at, src, &edited)
	if e.Action != AuditSourceUpdated || len(e.Changes) != 2 || e.Changes[0].Field != "secret" || e.Changes[0].Secret != SecretChanged ||
		e.Changes[1].Field != "environment_types" || string(e.Changes[1].After) != "[]" {
		t.Errorf("edited = %+v", e)
	}
	deleted := SourceAudit(by, at, src, nil)
	if deleted.Action != AuditSourceDeleted || deleted.ResourceID != src.ID || deleted.Changes[0].After != nil {
		t.Errorf("deleted = %+v", deleted)
	}
	for _, entry := range []*AuditEntry{created, e, deleted} {
		for _, c := range entry.Changes {
			if strings.Contains(string(c.Before)+string(c.After), "hunter") {
				t.Errorf("%s records the secret: %+v", entry.Action, c)
			}
		}
	}
}

// TestSourceSpecLimits: each limit admits its own value and refuses one
// more, naming the field.
func TestSourceSpecLimits(t *testing.T) {
	secret := strings.Repeat("s", MinSourceSecretLength)
	rules := func(n, length int) []EnvironmentRule {
		out := make([]EnvironmentRule, n)
		for i := range out {
			out[i] = EnvironmentRule{Pattern: strings.Repeat("é", length), Type: ModeStaging}
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		spec  SourceSpec
		field string // "" when valid
	}{
		{"name at the limit", SourceSpec{Name: strings.Repeat("é", MaxSourceNameLength)}, ""},
		{"name past it", SourceSpec{Name: strings.Repeat("é", MaxSourceNameLength+1)}, "name"},
		{"rules at the limit", SourceSpec{Name: "x", EnvironmentTypes: rules(MaxEnvironmentRules, 1)}, ""},
		{"rules past it", SourceSpec{Name: "x", EnvironmentTypes: rules(MaxEnvironmentRules+1, 1)}, "environment_types"},
		{"pattern at the limit", SourceSpec{Name: "x", EnvironmentTypes: rules(1, MaxRulePatternLength)}, ""},
		{"pattern past it", SourceSpec{Name: "x", EnvironmentTypes: rules(1, MaxRulePatternLength+1)}, "environment_types"},
		{"secret at the limit", SourceSpec{Name: "x", Secret: strPtr(strings.Repeat("s", MaxSecretLength))}, ""},
		{"secret past it", SourceSpec{Name: "x", Secret: strPtr(strings.Repeat("s", MaxSecretLength+1))}, "secret"},
	} {
		tc.spec.Kind = SourceGitHub
		if tc.spec.Secret == nil {
			tc.spec.Secret = &secret
		}
		err := tc.spec.Validate(true)
		if e, ok := err.(*Error); tc.field == "" && err != nil || tc.field != "" && (!ok || e.Field != tc.field) {
			t.Errorf("%s: Validate = %v, want an error on %q (none if empty)", tc.name, err, tc.field)
		}
	}
}

func TestSourceSpecValidate(t *testing.T) {
	secret, empty, short := strings.Repeat("s", MinSourceSecretLength), " ", strings.Repeat("s", MinSourceSecretLength-1)
	nulSecret, badUTF8 := secret+"\x00", secret+"\xff"
	tabSecret, spaceSecret, accentSecret := secret+"\t", " "+secret, secret+"é"
	ok := SourceSpec{Kind: SourceFlux, Name: "flux", Secret: &secret, EnvironmentTypes: []EnvironmentRule{{Pattern: "p*", Type: ModeStaging}}}
	if err := ok.Validate(true); err != nil {
		t.Fatal(err)
	}
	for field, spec := range map[string]SourceSpec{
		"kind":               {Kind: "JENKINS", Name: "x", Secret: &secret},
		"name":               {Kind: SourceFlux, Name: " ", Secret: &secret},
		"secret":             {Kind: SourceFlux, Name: "x", Secret: &empty},
		"secret (too short)": {Kind: SourceFlux, Name: "x", Secret: &short},
		"environment_types":  {Kind: SourceFlux, Name: "x", Secret: &secret, EnvironmentTypes: []EnvironmentRule{{Pattern: "p", Type: "PROD"}}},
		// SQLite keeps a NUL as it is and PostgreSQL refuses it or turns
		// it into U+FFFD: refused alike, naming the field.
		"name (NUL)":              {Kind: SourceFlux, Name: "a\x00b", Secret: &secret},
		"secret (NUL)":            {Kind: SourceFlux, Name: "x", Secret: &nulSecret},
		"secret (not UTF-8)":      {Kind: SourceFlux, Name: "x", Secret: &badUTF8},
		"environment_types (NUL)": {Kind: SourceFlux, Name: "x", Secret: &secret, EnvironmentTypes: []EnvironmentRule{{Pattern: "p\x00", Type: ModeStaging}}},
		// Sent as it is in a header, which cannot carry them.
		"secret (GITLAB, a tab)":     {Kind: SourceGitLab, Name: "x", Secret: &tabSecret},
		"secret (ARGOCD, a space)":   {Kind: SourceArgoCD, Name: "x", Secret: &spaceSecret},
		"secret (QOVERY, non-ASCII)": {Kind: SourceQovery, Name: "x", Secret: &accentSecret},
	} {
		var e *Error
		if err := spec.Validate(true); err == nil || !strings.HasPrefix(err.Error(), strings.Fields(field)[0]+":") {
			t.Errorf("%s: %v, want an error naming it", field, err)
		} else if e, _ = err.(*Error); e.Code != EInvalid {
			t.Errorf("%s: code %s", field, e.Code)
		}
	}
	// Where the tool signs with the secret, any text is a key.
	for _, kind := range []SourceKind{SourceGitHub, SourceFlux} {
		for _, sec := range []*string{&tabSecret, &spaceSecret, &accentSecret} {
			if err := (&SourceSpec{Kind: kind, Name: "x", Secret: sec}).Validate(true); err != nil {
				t.Errorf("%s with the secret %q: %v", kind, *sec, err)
			}
		}
	}
	noSecret := SourceSpec{Kind: SourceFlux, Name: "x"}
	if err := noSecret.Validate(true); err == nil {
		t.Error("a source created without a secret")
	}
	if err := noSecret.Validate(false); err != nil {
		t.Errorf("an edit without a secret (keeping it): %v", err)
	}
	edit := SourceSpec{Kind: SourceFlux, Name: "x", Secret: &short}
	if err := edit.Validate(false); err == nil || !strings.HasPrefix(err.Error(), "secret:") {
		t.Errorf("an edit giving a %d-character secret: %v, want an error naming secret", len(short), err)
	}
}

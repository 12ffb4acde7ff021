package webhook

import (
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

func strPtr(s string) *string { return &s }

// TestSecretRotation follows one webhook through every change of its
// secret an edit can make, checking what is kept and what deliveries are
// signed with right after.
func TestSecretRotation(t *testing.T) {
	const grace = 24 * time.Hour
	t0 := testNow
	w := &Webhook{}
	steps := []struct {
		name     string
		secret   *string // what the edit sends: nil keeps the secret
		at       time.Time
		previous string
		rotated  time.Time
		signs    []string // SigningSecrets right after the edit
	}{
		{"created without a secret", nil, t0, "", time.Time{}, nil},
		{"first secret: nothing to roll", strPtr("A"), t0.Add(time.Minute), "", time.Time{}, []string{"A"}},
		{"rotated", strPtr("B"), t0.Add(time.Hour), "A", t0.Add(time.Hour), []string{"B", "A"}},
		{"edit without the secret keeps the grace", nil, t0.Add(2 * time.Hour), "A", t0.Add(time.Hour), []string{"B", "A"}},
		{"same secret again keeps the grace", strPtr("B"), t0.Add(3 * time.Hour), "A", t0.Add(time.Hour), []string{"B", "A"}},
		{"rotated again within the grace: the one just replaced", strPtr("C"), t0.Add(4 * time.Hour), "B", t0.Add(4 * time.Hour), []string{"C", "B"}},
		{"removed: the grace ends at once", strPtr(""), t0.Add(5 * time.Hour), "", time.Time{}, nil},
		{"set after removal: nothing to roll", strPtr("D"), t0.Add(6 * time.Hour), "", time.Time{}, []string{"D"}},
		{"back to an old secret", strPtr("C"), t0.Add(7 * time.Hour), "D", t0.Add(7 * time.Hour), []string{"C", "D"}},
	}
	for _, s := range steps {
		w.Apply(Spec{Kind: KindStandard, TargetURL: "https://example.com", TargetSecret: s.secret, Events: EventTypes}, s.at)
		if w.PreviousSecret != s.previous || !w.SecretRotatedAt.Equal(s.rotated) {
			t.Fatalf("%s: previous %q rotated at %v, want %q at %v", s.name, w.PreviousSecret, w.SecretRotatedAt, s.previous, s.rotated)
		}
		if got := w.SigningSecrets(s.at, grace); !slices.Equal(got, s.signs) {
			t.Fatalf("%s: signs with %q, want %q", s.name, got, s.signs)
		}
	}
}

func TestSigningSecrets(t *testing.T) {
	rotated := testNow
	w := &Webhook{TargetSecret: "new", PreviousSecret: "old", SecretRotatedAt: rotated}
	both, current := []string{"new", "old"}, []string{"new"}
	tests := []struct {
		name  string
		now   time.Time
		grace time.Duration
		want  []string
	}{
		{"at the rotation", rotated, time.Hour, both},
		{"within the grace", rotated.Add(59 * time.Minute), time.Hour, both},
		{"a clock behind the rotation's", rotated.Add(-time.Minute), time.Hour, both},
		{"the grace's last instant", rotated.Add(time.Hour - time.Nanosecond), time.Hour, both},
		{"the grace is over", rotated.Add(time.Hour), time.Hour, current},
		{"long after", rotated.Add(1000 * time.Hour), time.Hour, current},
		{"no grace", rotated, 0, current},
	}
	for _, tt := range tests {
		if got := w.SigningSecrets(tt.now, tt.grace); !slices.Equal(got, tt.want) {
			t.Errorf("%s: SigningSecrets = %q, want %q", tt.name, got, tt.want)
		}
	}

	// A previous secret without a rotation time (a row edited by hand) is
	// not trusted to be recent.
	if got := (&Webhook{TargetSecret: "new", PreviousSecret: "old"}).SigningSecrets(rotated, time.Hour); !slices.Equal(got, current) {
		t.Errorf("without SecretRotatedAt: %q, want %q", got, current)
	}
	if got := (&Webhook{}).SigningSecrets(rotated, time.Hour); got != nil {
		t.Errorf("without a secret: %q, want none", got)
	}
}

func TestRedactedURL(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"https://example.com/hook?x=1", "https://example.com/hook?x=1"},
		{"https://deploy:s3cret@example.com/hook", "https://deploy:xxxxx@example.com/hook"},
		{"https://tok3n@example.com/hook", "https://xxxxx@example.com/hook"},
		{"https://sk_live_51Hx9tok3n:@example.com/hook", "https://xxxxx@example.com/hook"}, // curl -u KEY: style
		{"https://:@example.com/", "https://xxxxx@example.com/"},
		// Not URLs Go parses: masked by their text.
		{"https://user:p%zz@example.com/h", "https://xxxxx@example.com/h"},
		{"https://KEY@example.com:notaport/", "https://xxxxx@example.com:notaport/"},
		{"https://a@b@example.com:x", "https://xxxxx@example.com:x"},
		{"https://example.com:x/h?x=1&token=abc#f", "https://example.com:x/h?x=1&token=xxxxx#f"},
		{"https://example.com:x/a@b", "https://example.com:x/a@b"},
		{"https://example.com/h?a=1;token=abc&b=2", "https://example.com/h?a=1;token=xxxxx&b=2"},
		{"https://example.com/h?token=ab;cd&b=2", "https://example.com/h?token=xxxxx&b=2"},
		{"https://example.com/h?x=a;b=c;key=k;d=e", "https://example.com/h?x=a;b=c;key=xxxxx"},
		{"https://example.com/h?x=a;b&token=", "https://example.com/h?x=a;b&token="},
		{"https://:s3cret@example.com/", "https://:xxxxx@example.com/"},
		{"://not a url", "://not a url"},
		{"https://hooks.slack.com/services/T0001/B0002/XXXXsecretXXXX", "https://hooks.slack.com/services/T0001/B0002/xxxxx"},
		{"https://hooks.slack.com/services/T0001/B0002/XXXXsecretXXXX/", "https://hooks.slack.com/services/T0001/B0002/xxxxx"},
		{"https://HOOKS.SLACK.COM/workflows/T1/A2/345/tok3n", "https://HOOKS.SLACK.COM/workflows/T1/A2/345/xxxxx"},
		{"https://discord.com/api/webhooks/123/tok3n", "https://discord.com/api/webhooks/123/xxxxx"},
		// Discord's Slack- and GitHub-compatible endpoints (a SLACK
		// webhook may well point at the first) end after the token, and
		// its API paths may name a version.
		{"https://discord.com/api/webhooks/123/tok3n/slack", "https://discord.com/api/webhooks/123/xxxxx/slack"},
		{"https://discord.com/api/webhooks/123/tok3n/github?wait=true", "https://discord.com/api/webhooks/123/xxxxx/github?wait=true"},
		{"https://discord.com/api/v10/webhooks/123/tok3n", "https://discord.com/api/v10/webhooks/123/xxxxx"},
		{"https://ptb.discord.com/api/v9/webhooks/123/tok3n/slack", "https://ptb.discord.com/api/v9/webhooks/123/xxxxx/slack"},
		// A host name may end with the root's dot; it is the same host.
		{"https://hooks.slack.com./services/T0001/B0002/XXXXsecretXXXX", "https://hooks.slack.com./services/T0001/B0002/xxxxx"},
		{"https://discord.com./api/webhooks/123/tok3n", "https://discord.com./api/webhooks/123/xxxxx"},
		// The shortest paths that hold a credential, and one that holds none.
		{"https://hooks.slack.com/triggers/XXXXsecretXXXX", "https://hooks.slack.com/triggers/xxxxx"},
		{"https://hooks.slack-gov.com/services/T0001/B0002/XXXXsecretXXXX", "https://hooks.slack-gov.com/services/T0001/B0002/xxxxx"},
		{"https://discord.com/api/webhooks/123", "https://discord.com/api/webhooks/123"},
		{"https://example.com/services/T0001/B0002/not-slack", "https://example.com/services/T0001/B0002/not-slack"},
		{"https://example.com/h?token=abc&x=1", "https://example.com/h?token=xxxxx&x=1"},
		{"https://example.com/h?x=1&access_token=abc&API_KEY=k&sig=s&code=c&page=2", "https://example.com/h?x=1&access_token=xxxxx&API_KEY=xxxxx&sig=xxxxx&code=xxxxx&page=2"},
		{"https://example.com/h?client%5Fsecret=abc", "https://example.com/h?client%5Fsecret=xxxxx"},
		{"https://example.com/h?password=&x", "https://example.com/h?password=&x"},
		{"https://u:p@hooks.slack.com/services/T/B/tok?apikey=1", "https://u:xxxxx@hooks.slack.com/services/T/B/xxxxx?apikey=xxxxx"},
	} {
		if got := RedactedURL(tt.in); got != tt.want {
			t.Errorf("RedactedURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSpecValidateText(t *testing.T) {
	valid := func() Spec {
		return Spec{Kind: KindStandard, TargetURL: "https://example.com/h", Events: []EventType{EventDeploymentStarted}}
	}
	key := func(n int) string { return "whsec_" + base64.StdEncoding.EncodeToString(make([]byte, n)) }
	names := func(n int) []string {
		var out []string
		for i := range n {
			out = append(out, fmt.Sprint("project-", i))
		}
		return out
	}
	tests := []struct {
		name  string
		edit  func(s *Spec)
		field string // "" when valid
	}{
		{"valid", func(s *Spec) {}, ""},
		{"NUL in description", func(s *Spec) { s.Description = "a\x00" }, "description"},
		{"invalid UTF-8 in description", func(s *Spec) { s.Description = "caf\xe9" }, "description"},
		{"NUL in a project filter", func(s *Spec) { s.ProjectNamesFilter = []string{"web", "a\x00"} }, "project_names_filter"},
		{"invalid UTF-8 in a project filter", func(s *Spec) { s.ProjectNamesFilter = []string{"\xff"} }, "project_names_filter"},
		{"invalid UTF-8 in the URL", func(s *Spec) { s.TargetURL = "https://example.com/\xff" }, "target_url"},
		{"port 99999", func(s *Spec) { s.TargetURL = "https://example.com:99999/h" }, "target_url"},
		{"port 0", func(s *Spec) { s.TargetURL = "http://example.com:0/" }, "target_url"},
		{"port 65535", func(s *Spec) { s.TargetURL = "http://example.com:65535/" }, ""},
		{"port 1", func(s *Spec) { s.TargetURL = "http://[2001:db8::1]:1/" }, ""},
		{"secret removed", func(s *Spec) { s.TargetSecret = strPtr("") }, ""},
		{"secret with a space inside", func(s *Spec) { s.TargetSecret = strPtr("two words") }, ""},
		{"secret with CR LF", func(s *Spec) { s.TargetSecret = strPtr("a\r\nX-Injected: 1") }, "target_secret"},
		{"secret with NUL", func(s *Spec) { s.TargetSecret = strPtr("a\x00b") }, "target_secret"},
		{"secret with a tab", func(s *Spec) { s.TargetSecret = strPtr("a\tb") }, "target_secret"},
		{"secret not ASCII", func(s *Spec) { s.TargetSecret = strPtr("pässword") }, "target_secret"},
		{"secret with a trailing space", func(s *Spec) { s.TargetSecret = strPtr("secret ") }, "target_secret"},
		{"secret too long", func(s *Spec) { s.TargetSecret = strPtr(strings.Repeat("a", MaxSecretLength+1)) }, "target_secret"},
		{"secret at the limit", func(s *Spec) { s.TargetSecret = strPtr(strings.Repeat("a", MaxSecretLength)) }, ""},
		{"whsec of 24 bytes", func(s *Spec) { s.TargetSecret = strPtr(key(24)) }, ""},
		{"whsec of 32 bytes", func(s *Spec) { s.TargetSecret = strPtr(key(32)) }, ""},
		{"whsec of 64 bytes", func(s *Spec) { s.TargetSecret = strPtr(key(64)) }, ""},
		{"whsec of 23 bytes", func(s *Spec) { s.TargetSecret = strPtr(key(23)) }, "target_secret"},
		{"whsec of 65 bytes", func(s *Spec) { s.TargetSecret = strPtr(key(65)) }, "target_secret"},
		{"whsec not base64", func(s *Spec) { s.TargetSecret = strPtr("whsec_not-base64!!") }, "target_secret"},
		{"secret of the printable ends", func(s *Spec) { s.TargetSecret = strPtr("! ~") }, ""},
		// Each limit admits its own value.
		{"description at the limit", func(s *Spec) { s.Description = strings.Repeat("é", MaxDescriptionLength) }, ""},
		{"description past it", func(s *Spec) { s.Description = strings.Repeat("é", MaxDescriptionLength+1) }, "description"},
		{"project filters at the limit", func(s *Spec) { s.ProjectNamesFilter = names(MaxProjectFilters) }, ""},
		{"project filters past it", func(s *Spec) { s.ProjectNamesFilter = names(MaxProjectFilters + 1) }, "project_names_filter"},
		{"project filter at the limit", func(s *Spec) { s.ProjectNamesFilter = []string{strings.Repeat("é", MaxProjectFilterLength)} }, ""},
		{"project filter past it", func(s *Spec) { s.ProjectNamesFilter = []string{strings.Repeat("é", MaxProjectFilterLength+1)} }, "project_names_filter"},
		{"URL at the limit", func(s *Spec) { s.TargetURL = "https://example.com/" + strings.Repeat("a", MaxTargetURLLength-20) }, ""},
		{"URL past it", func(s *Spec) { s.TargetURL = "https://example.com/" + strings.Repeat("a", MaxTargetURLLength-19) }, "target_url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := valid()
			tt.edit(&s)
			err := s.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			e, ok := err.(*Error)
			if !ok || e.Code != EInvalid || e.Field != tt.field {
				t.Fatalf("Validate = %#v, want an invalid error on %s", err, tt.field)
			}
		})
	}
}

// Sendable refuses what the dispatcher could not send, saying what to
// do first: a key to add back outranks enabling, which would not help.
func TestSendable(t *testing.T) {
	for _, c := range []struct {
		enabled, unreadable bool
		want                string // in the message; "" for nil
	}{
		{true, false, ""},
		{false, false, "the webhook is disabled: enable it before sending it a test event"},
		{true, true, "HOOKD_ENCRYPTION_KEY, or the stored value is damaged): its operator must add that key back before sending it a test event; the webhook can be deleted"},
		{false, true, "HOOKD_ENCRYPTION_KEY"},
	} {
		w := &Webhook{Enabled: c.enabled}
		if c.unreadable {
			w.Unreadable = errors.New("secrets: webhook: cannot decrypt its secret")
		}
		err := w.Sendable("sending it a test event")
		switch {
		case c.want == "" && err != nil:
			t.Errorf("enabled %t, unreadable %t: %v, want nil", c.enabled, c.unreadable, err)
		case c.want != "" && (ErrorCode(err) != EConflict || !strings.Contains(err.Error(), c.want)):
			t.Errorf("enabled %t, unreadable %t: %v, want a conflict saying %q", c.enabled, c.unreadable, err, c.want)
		}
	}
}

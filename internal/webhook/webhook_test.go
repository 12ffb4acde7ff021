package webhook

import (
	"slices"
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
		{"https://:s3cret@example.com/", "https://:xxxxx@example.com/"},
		{"://not a url", "://not a url"},
	} {
		if got := RedactedURL(tt.in); got != tt.want {
			t.Errorf("RedactedURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

package webhook

import (
	"strings"
	"testing"
	"time"
)

func TestParseStatusRange(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want *StatusRange
		ok   bool
	}{
		{"", nil, true},
		{"none", &StatusRange{0, 0}, true},
		{"5xx", &StatusRange{500, 599}, true},
		{" 4XX ", &StatusRange{400, 499}, true},
		{"503", &StatusRange{503, 503}, true},
		{"100", &StatusRange{100, 100}, true},
		{"599", &StatusRange{599, 599}, true},
		{"99", nil, false},
		{"0", nil, false},
		{"600", nil, false},
		{"6xx", nil, false},
		{"5x", nil, false},
		{"failed", nil, false},
	} {
		got, err := ParseStatusRange(tc.in)
		if (err == nil) != tc.ok || (got == nil) != (tc.want == nil) || (got != nil && *got != *tc.want) {
			t.Errorf("ParseStatusRange(%q) = %v, %v; want %v, ok %v", tc.in, got, err, tc.want, tc.ok)
			continue
		}
		if err != nil && ErrorCode(err) != EInvalid {
			t.Errorf("ParseStatusRange(%q): error %v is not Invalid", tc.in, err)
		}
		if got != nil {
			if back, _ := ParseStatusRange(got.String()); *back != *got {
				t.Errorf("%q: String() = %q does not read back", tc.in, got.String())
			}
		}
	}
}

func TestValidateRecover(t *testing.T) {
	now := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name         string
		since, until time.Time
		field        string // "" when valid
	}{
		{"an hour", now.Add(-time.Hour), time.Time{}, ""},
		{"a window", now.Add(-2 * time.Hour), now.Add(-time.Hour), ""},
		{"no since", time.Time{}, time.Time{}, "since"},
		{"future", now.Add(time.Minute), time.Time{}, "since"},
		{"until before since", now.Add(-time.Hour), now.Add(-2 * time.Hour), "until"},
		{"too far back", now.Add(-MaxRecoverWindow - time.Second), time.Time{}, "since"},
	} {
		err := ValidateRecover(tc.since, tc.until, now)
		if tc.field == "" && err != nil || tc.field != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.field+":")) {
			t.Errorf("%s: %v, want an error on %q", tc.name, err, tc.field)
		}
	}
}

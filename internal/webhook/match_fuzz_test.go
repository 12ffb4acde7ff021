package webhook

import (
	"regexp"
	"strings"
	"testing"
)

// FuzzMatchProjectName checks MatchProjectName against the plainest
// reading of its documentation: a case-insensitive, anchored regexp in
// which '*' is ".*" and everything else is literal. (?s) lets '*' match a
// line break, as MatchProjectName does.
func FuzzMatchProjectName(f *testing.F) {
	for _, s := range [][2]string{
		{"billing", "Billing"},
		{"billing*", "billing-api"},
		{"*-API", "payments-api"},
		{"a*b*c", "abc"},
		{"*a*a", "a"},
		{"**", ""},
		{"İ*", "i̇x"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, name string) {
		got := MatchProjectName(pattern, name)
		want, ok := matchReference(pattern, name)
		if !ok {
			t.Skip("pattern too large for the reference regexp")
		}
		if got != want {
			t.Errorf("MatchProjectName(%q, %q) = %v, reference says %v", pattern, name, got, want)
		}
	})
}

func matchReference(pattern, name string) (matched, ok bool) {
	parts := strings.Split(strings.ToLower(pattern), "*")
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	re, err := regexp.Compile(`(?s)\A` + strings.Join(parts, ".*") + `\z`)
	if err != nil {
		return false, false
	}
	return re.MatchString(strings.ToLower(name)), true
}

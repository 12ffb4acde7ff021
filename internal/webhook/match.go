package webhook

import (
	"slices"
	"strings"
)

// Matches reports whether w should receive ev: it is enabled, subscribes
// to the event type, and both filters accept the event (an empty filter
// accepts everything).
func (w *Webhook) Matches(ev *Event) bool {
	if !w.Enabled || !slices.Contains(w.Events, ev.Type) {
		return false
	}
	if len(w.EnvironmentTypesFilter) > 0 && !slices.Contains(w.EnvironmentTypesFilter, ev.EnvironmentMode) {
		return false
	}
	if len(w.ProjectNamesFilter) == 0 {
		return true
	}
	for _, pattern := range w.ProjectNamesFilter {
		if MatchProjectName(pattern, ev.ProjectName) {
			return true
		}
	}
	return false
}

// MatchProjectName reports whether name matches pattern, ignoring case.
// A pattern without '*' must equal the whole name; '*' matches any run of
// characters, including none.
func MatchProjectName(pattern, name string) bool {
	pattern, name = strings.ToLower(pattern), strings.ToLower(name)
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == name
	}
	// The first part anchors the start and the last the end; the middle
	// parts are found greedily left to right, which is enough for '*'.
	first, last := parts[0], parts[len(parts)-1]
	if !strings.HasPrefix(name, first) {
		return false
	}
	name = name[len(first):]
	for _, mid := range parts[1 : len(parts)-1] {
		i := strings.Index(name, mid)
		if i < 0 {
			return false
		}
		name = name[i+len(mid):]
	}
	return strings.HasSuffix(name, last)
}

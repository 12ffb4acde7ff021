package source

import (
	"crypto/sha256"
	"crypto/sha512"
	"hash"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/hookd/hookd/internal/webhook"
)

// Flux's notification-controller with a generic-hmac Provider: the body
// is a Flux Event, signed in X-Signature as "<hash>=<hex HMAC of the
// body>", keyed with the `token` of the Provider's Secret.
// https://fluxcd.io/flux/components/notification/providers/#generic-webhook-with-hmac

var fluxHashes = map[string]func() hash.Hash{
	"sha224": sha256.New224,
	"sha256": sha256.New,
	"sha384": sha512.New384,
	"sha512": sha512.New,
}

func verifyFlux(secret string, h http.Header, body []byte, _ time.Time) error {
	// Flux's usual Provider type, generic, sends no signature.
	return verifyHexHMAC("X-Signature", h.Get("X-Signature"), secret, body, fluxHashes,
		"the Flux Provider must be of type generic-hmac (generic does not sign), its Secret's token this source's secret")
}

type fluxEvent struct {
	InvolvedObject struct {
		Kind      string `json:"kind"`
		Namespace string `json:"namespace"`
		Name      string `json:"name"`
		UID       string `json:"uid"`
	} `json:"involvedObject"`
	Severity string            `json:"severity"`
	Reason   string            `json:"reason"`
	Message  string            `json:"message"`
	Metadata map[string]string `json:"metadata"`
}

// fluxKinds are the objects whose events are deployments.
var fluxKinds = map[string]bool{"Kustomization": true, "HelmRelease": true}

// fluxSucceeded are the reasons that mean the new revision is applied.
var fluxSucceeded = map[string]bool{
	"ReconciliationSucceeded": true,
	"InstallSucceeded":        true,
	"UpgradeSucceeded":        true,
}

// fluxEventType maps an event's reason and severity to an event type.
func fluxEventType(e *fluxEvent) (webhook.EventType, bool) {
	switch {
	case e.Severity == "error" || strings.HasSuffix(e.Reason, "Failed"):
		return webhook.EventDeploymentFailure, true
	case e.Reason == "Progressing":
		return webhook.EventDeploymentStarted, true
	case fluxSucceeded[e.Reason]:
		return webhook.EventDeploymentSuccessful, true
	}
	return "", false
}

// metadata returns the value of key, or of a key ending in "/"+key (Flux
// prefixes some with the controller's API group, as
// "kustomize.toolkit.fluxcd.io/revision").
func (e *fluxEvent) metadata(key string) string {
	if v, ok := e.Metadata[key]; ok {
		return v
	}
	for k, v := range e.Metadata {
		if strings.HasSuffix(k, "/"+key) {
			return v
		}
	}
	return ""
}

// helmReleaseVersion finds the Helm release's version in helm-controller's
// message of a successful install or upgrade.
var helmReleaseVersion = regexp.MustCompile(`for release (\S+\.v\d+) with chart`)

// fluxCommit returns the commit of a source revision: "main@sha1:<id>"
// (Flux 2.0 and later) or "main/<id>" (before); a chart version has none.
func fluxCommit(revision string) (commit, branch string) {
	if ref, digest, ok := strings.Cut(revision, "@"); ok {
		_, id, _ := strings.Cut(digest, ":")
		return id, ref
	}
	if i := strings.LastIndex(revision, "/"); i >= 0 {
		return revision[i+1:], revision[:i]
	}
	return "", ""
}

func translateFlux(src *webhook.Source, _ http.Header, body []byte) (Result, error) {
	var e fluxEvent
	if err := decodeJSON("Flux event", body, &e); err != nil {
		return Result{}, err
	}
	obj := e.InvolvedObject
	if obj.Kind == "" || obj.Name == "" {
		return Result{}, webhook.Invalid("involvedObject", "must name the object (kind and name) the Flux event is about")
	}
	if !fluxKinds[obj.Kind] {
		return ignored("Flux %s events are not deployments: only Kustomization and HelmRelease events are translated", obj.Kind)
	}
	eventType, ok := fluxEventType(&e)
	if !ok {
		return ignored("Flux reason %q (severity %s) is not a deployment starting, succeeding or failing", e.Reason, e.Severity)
	}
	revision := e.metadata("revision")
	commit, branch := fluxCommit(revision)
	object := obj.Kind + "/" + obj.Namespace + "/" + obj.Name
	deploymentID := object
	if revision != "" {
		deploymentID += "@" + revision
	}
	d := deployment{
		eventType: eventType,
		project:   obj.Name,
		projectID: obj.UID,
		// The Alert's eventMetadata can name the environment and the
		// cluster; the object's namespace stands in for the environment.
		environment:      firstOf(e.metadata("environment"), obj.Namespace),
		cluster:          e.metadata("cluster"),
		deploymentID:     deploymentID,
		status:           e.Reason,
		projectField:     "involvedObject.name",
		environmentField: "involvedObject.namespace",
		application: application{
			ID:       obj.UID,
			Name:     object,
			CommitID: commit,
			Branch:   branch,
		},
	}
	// Flux sends no delivery id; the object, revision and reason name what
	// happened, so a repeat of the same event is not delivered twice. The
	// cluster and environment are part of it: one source may hear from
	// several clusters applying the same object and revision. A
	// HelmRelease's revision is its chart's version, which an upgrade of
	// its values alone (a new image tag, most often) keeps, and the
	// values' digest (its token) stays inside Flux: a success's message
	// names the Helm release's own version ("release prod-eu/podinfo.v3"),
	// new at each upgrade and the same in each repeat. (A failure's does
	// not, and carries Helm's log lines, stamped, so it is left out.)
	key := object + "|" + revision + "|" + e.Reason + "|" + d.cluster + "|" + d.environment
	if obj.Kind == "HelmRelease" {
		if m := helmReleaseVersion.FindStringSubmatch(e.Message); m != nil {
			key += "|" + m[1]
		}
	}
	return d.result(src, key)
}

package main

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hookd/hookd/internal/signing"
)

// TestSecretRotation changes a webhook's secret the way its owner does,
// through the API, and verifies every delivery as a receiver holding one
// secret would, with a Standard Webhooks verifier: during the grace either
// the new or the previous secret verifies; after it, only the new one;
// and removing the secret ends the grace at once.
func TestSecretRotation(t *testing.T) {
	// Short enough to wait out, long enough for a delivery to be made
	// well within it even on a loaded machine.
	const grace = 3 * time.Second
	forEachBackend(t, func(t *testing.T, dbURL string) {
		tg := newTarget(t)
		srv := startServer(t, deliveryEnv(dbURL, map[string]string{"HOOKD_SECRET_ROTATION_GRACE": grace.String()}))
		o := newOrg(t, srv, dbURL)
		newSecret := func() string { return "whsec_" + base64.StdEncoding.EncodeToString(randomBytes(t, 24)) }
		a, b, c, d := newSecret(), newSecret(), newSecret(), newSecret()

		fields := map[string]any{"kind": "STANDARD", "target_url": tg.URL + "/rotating", "events": []string{"DEPLOYMENT_STARTED"}, "target_secret": a}
		id := o.createWebhook(fields)
		// setSecret edits the webhook (a full replace) with only the secret
		// changed, and returns the edit's time (when a rotation began).
		setSecret := func(secret string) time.Time {
			t.Helper()
			fields["target_secret"] = secret
			var w webhookJSON
			if st, _, body := o.api.do("PUT", o.path("/webhook/"+id), fields, &w); st != 200 {
				t.Fatalf("edit: %d %s", st, body)
			}
			at, err := time.Parse(time.RFC3339Nano, w.UpdatedAt)
			if err != nil {
				t.Fatal(err)
			}
			return at
		}
		// deliver emits an event and returns what the target received for it.
		deliver := func() receipt {
			t.Helper()
			ev := o.emit(deploymentEvent("DEPLOYMENT_STARTED", "api", "PRODUCTION"))
			var got receipt
			waitFor(t, 30*time.Second, "the delivery of event "+ev.ID, func() bool {
				for _, r := range tg.got("/rotating") {
					if r.payloadID() == ev.ID {
						got = r
						return true
					}
				}
				return false
			})
			return got
		}
		// verifies reports whether a receiver holding only secret accepts r.
		verifies := func(r receipt, secret string) bool {
			t.Helper()
			err := signing.Verify([]string{secret}, r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp"), r.Header.Get("webhook-signature"), r.Body, time.Now(), 5*time.Minute)
			if err != nil && !errors.Is(err, signing.ErrNoSignature) {
				t.Fatalf("verify: %v", err)
			}
			return err == nil
		}
		signatures := func(r receipt) []string { return strings.Fields(r.Header.Get("webhook-signature")) }
		// check asserts which secrets verify r, which one the Qovery headers
		// carry, and that the first signature is the current secret's.
		check := func(what string, r receipt, current string, accepted, rejected []string) {
			t.Helper()
			if n := len(signatures(r)); n != len(accepted) {
				t.Fatalf("%s: %d signatures (%q), want %d", what, n, r.Header.Get("webhook-signature"), len(accepted))
			}
			for _, s := range accepted {
				if !verifies(r, s) {
					t.Errorf("%s: a receiver holding secret %c rejects the delivery", what, name(s, a, b, c, d))
				}
			}
			for _, s := range rejected {
				if verifies(r, s) {
					t.Errorf("%s: a receiver holding secret %c accepts the delivery", what, name(s, a, b, c, d))
				}
			}
			if current != "" {
				first := signatures(r)[0]
				if signing.Verify([]string{current}, r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp"), first, r.Body, time.Now(), 5*time.Minute) != nil {
					t.Errorf("%s: the first signature is not the current secret's", what)
				}
			}
			if r.Header.Get("Qovery-Signature") != current || r.Header.Get("Qovery-Secret") != current || len(r.Header.Values("Qovery-Secret")) > 1 {
				t.Errorf("%s: the Qovery headers must carry the current secret alone", what)
			}
		}
		// withinGrace fails the test if r was not sent well within the
		// grace after a rotation at edited: then a single signature would
		// be right, and the machine is too slow for this test.
		withinGrace := func(r receipt, edited time.Time) {
			t.Helper()
			if r.At.Sub(edited) > grace-500*time.Millisecond {
				t.Fatalf("the delivery took %v after the edit, too close to the %v grace for this test", r.At.Sub(edited), grace)
			}
		}

		check("before any rotation", deliver(), a, []string{a}, []string{b})

		edited := setSecret(b)
		r := deliver()
		withinGrace(r, edited)
		check("during the grace", r, b, []string{b, a}, []string{c})

		// Neither secret is ever shown: not by the API, nor in the delivery log.
		for _, p := range []string{"/webhook/" + id, "/webhook", "/webhook/" + id + "/event", "/webhook/" + id + "/delivery"} {
			_, _, body := o.api.do("GET", o.path(p), nil, nil)
			for _, s := range []string{a, b} {
				if strings.Contains(string(body), s) || strings.Contains(string(body), strings.TrimPrefix(s, "whsec_")) {
					t.Fatalf("GET %s shows a secret: %s", p, body)
				}
			}
		}
		if logs := srv.logs.String(); strings.Contains(logs, strings.TrimPrefix(a, "whsec_")) || strings.Contains(logs, strings.TrimPrefix(b, "whsec_")) {
			t.Fatal("the logs hold a secret")
		}

		// After the grace, only the new secret signs. Wait for it by
		// delivering until a delivery carries one signature; every one
		// before that must still carry both.
		deadline := time.Now().Add(grace + 30*time.Second)
		for {
			r = deliver()
			if len(signatures(r)) == 1 {
				break
			}
			check("still in the grace", r, b, []string{b, a}, nil)
			if time.Now().After(deadline) {
				t.Fatalf("deliveries still carry the previous secret's signature %v after the rotation", time.Since(edited))
			}
			time.Sleep(250 * time.Millisecond)
		}
		if r.At.Sub(edited) < grace {
			t.Errorf("the previous secret stopped signing %v after the rotation, before the %v grace", r.At.Sub(edited), grace)
		}
		check("after the grace", r, b, []string{b}, []string{a})

		// Removing the secret ends a grace at once: the next delivery is
		// unsigned (as a webhook without a secret always is), and a secret
		// set afterwards has nothing to roll from.
		edited = setSecret(c)
		r = deliver()
		withinGrace(r, edited)
		check("a second rotation", r, c, []string{c, b}, []string{a})
		setSecret("")
		r = deliver()
		if _, ok := r.Header["Webhook-Signature"]; ok || r.Header.Get("Qovery-Signature") != "" || r.Header.Get("Qovery-Secret") != "" {
			t.Errorf("after removing the secret the delivery is still signed: %v", r.Header)
		}
		if r.Header.Get("webhook-id") == "" || r.Header.Get("webhook-timestamp") == "" {
			t.Errorf("an unsigned delivery still carries webhook-id and webhook-timestamp: %v", r.Header)
		}
		setSecret(d)
		check("a secret set after removal", deliver(), d, []string{d}, []string{c, b})
	})
}

// name says which of the test's secrets s is, for messages that must not
// print a secret.
func name(s string, secrets ...string) rune {
	for i, x := range secrets {
		if x == s {
			return rune('A' + i)
		}
	}
	return '?'
}

package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestConsoleLeavesNoAnswerInTheBrowserCache signs in to the console, lets
// it read the organization's webhooks, signs out, and asks the browser's
// HTTP cache for that answer without credentials. The API's answers hold
// an organization's target URLs (a Slack URL is itself a secret) and its
// targets' answers: a browser that keeps them leaves them on the disk of
// a shared machine after the tab signed out, readable with no token.
func TestConsoleLeavesNoAnswerInTheBrowserCache(t *testing.T) {
	b := newBrowser(t, 60*time.Second)
	dbURL := "sqlite:" + filepath.Join(t.TempDir(), "hookd.db")
	srv := startServer(t, deliveryEnv(dbURL, nil))
	o := newOrg(t, srv, dbURL)
	const marker = "kept-only-while-signed-in"
	o.createWebhook(map[string]any{"kind": "STANDARD", "target_url": "http://127.0.0.1:1/" + marker, "events": []string{"DEPLOYMENT_STARTED"}})

	b.run("signing in",
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible(css("#signin-token")),
		chromedp.SendKeys(css("#signin-token"), strings.TrimPrefix(o.api.auth, "Token ")),
		chromedp.SendKeys(css("#signin-org"), o.id.String()),
		chromedp.Click(css("#signin-submit")),
		chromedp.WaitVisible(css(`#webhook-list li[data-id]`)),
	)
	b.run("signing out", chromedp.Click(css("#sign-out")), chromedp.WaitVisible(css("#signin-token")))

	out, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](
		`fetch(`+"`"+`/organization/`+o.id.String()+`/webhook`+"`"+`, {cache: 'only-if-cached', mode: 'same-origin'})
			.then((r) => r.text(), (e) => 'not in the cache: ' + e.message)`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, marker) {
		t.Errorf("after sign-out the browser's cache still answers the webhook list, with no credentials: %s", out)
	}
}

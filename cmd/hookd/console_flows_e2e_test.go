package main

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
)

// consoleSignIn fills the console's sign-in form, on whatever page it is.
func consoleSignIn(b *browser, token string, org uuid.UUID) {
	b.t.Helper()
	b.run("signing in",
		chromedp.WaitVisible(css("#signin-token")),
		clearInput("#signin-token"),
		clearInput("#signin-org"),
		chromedp.SendKeys(css("#signin-token"), token),
		chromedp.SendKeys(css("#signin-org"), org.String()),
		chromedp.Click(css("#signin-submit")),
	)
}

// consoleHookd is a hookd on a fresh SQLite database, with an
// organization, a token of it and an API caller holding that token.
type consoleHookd struct {
	*server
	dbURL, token string
	org          uuid.UUID
	api          call
}

// startConsoleHookd starts a consoleHookd with env on top of its database.
func startConsoleHookd(t *testing.T, env map[string]string) *consoleHookd {
	t.Helper()
	h := &consoleHookd{dbURL: "sqlite:" + filepath.Join(t.TempDir(), "hookd.db"), org: uuid.New()}
	full := map[string]string{"HOOKD_DATABASE_URL": h.dbURL}
	for k, v := range env {
		full[k] = v
	}
	h.server = startServer(t, full)
	h.token = newToken(t, h.dbURL, h.org)
	h.api = call{t: t, base: h.URL, auth: "Token " + h.token}
	return h
}

// createWebhook creates a webhook of body in h's organization through
// the API and returns its id.
func (h *consoleHookd) createWebhook(body string) string {
	h.api.t.Helper()
	return h.create("webhook", body)
}

// create creates a resource ("webhook", "source") of body in h's
// organization through the API and returns its id.
func (h *consoleHookd) create(resource, body string) string {
	h.api.t.Helper()
	var created struct {
		ID string `json:"id"`
	}
	if st, _, resp := h.api.do("POST", "/organization/"+h.org.String()+"/"+resource, body, &created); st != 201 {
		h.api.t.Fatalf("create %s: %d %s", resource, st, resp)
	}
	return created.ID
}

// TestConsoleDeepLink checks that a link to a webhook's page leads there
// once signed in: opened in a new tab, and after the token was revoked
// while the page was open.
func TestConsoleDeepLink(t *testing.T) {
	b := newBrowser(t, 90*time.Second)
	h := startConsoleHookd(t, map[string]string{"HOOKD_ALLOWED_TARGET_CIDRS": "127.0.0.0/8,::1/128"})
	wid := h.createWebhook(`{"kind":"STANDARD","target_url":"http://127.0.0.1:9/hook","events":["DEPLOYMENT_FAILURE"]}`)
	link := "#/webhooks/" + wid

	b.run("opening a link to the webhook", chromedp.Navigate(h.URL+"/"+link))
	consoleSignIn(b, h.token, h.org)
	b.waitJS("the webhook's delivery log", `!!document.getElementById('send-test')`)
	if got := b.eval(`location.hash`); got != link {
		t.Errorf("after signing in, the console is at %q, want %q", got, link)
	}

	// The token is revoked while the page polls the log: the console asks
	// to sign in again, then comes back to the same page.
	revokeLast := func() {
		t.Helper()
		out, errOut, err := hookd(t, map[string]string{"HOOKD_DATABASE_URL": h.dbURL}, "token", "list", "--organization", h.org.String())
		if err != nil {
			t.Fatalf("token list: %v %s", err, errOut)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if _, errOut, err := hookd(t, map[string]string{"HOOKD_DATABASE_URL": h.dbURL}, "token", "revoke", strings.Fields(lines[len(lines)-1])[0]); err != nil {
			t.Fatalf("token revoke: %v %s", err, errOut)
		}
	}
	revokeLast()
	b.run("the console asks to sign in again", chromedp.WaitVisible(css("#signin-error")))
	if got := b.eval(`document.getElementById('signin-error').textContent`); !strings.Contains(got, "Sign in again") {
		t.Errorf("after the token was revoked, the sign-in page says %q", got)
	}
	consoleSignIn(b, newToken(t, h.dbURL, h.org), h.org)
	b.waitJS("the webhook's delivery log again", `!!document.getElementById('send-test')`)
	if got := b.eval(`location.hash`); got != link {
		t.Errorf("after signing in again, the console is at %q, want %q", got, link)
	}

	// Revoked while a dialog is open: the dialog, modal, must not stay
	// over the sign-in form.
	b.run("opening the recover dialog", chromedp.WaitVisible(css("#recover-open")), chromedp.Click(css("#recover-open")), chromedp.WaitVisible(css("#recover-submit")))
	revokeLast()
	b.run("the log's refresh is refused", chromedp.WaitVisible(css("#signin-error")))
	if got := b.eval(`String(document.querySelectorAll('dialog[open]').length)`); got != "0" {
		t.Errorf("after the token was refused, %s dialogs are still open over the sign-in form", got)
	}
}

// TestConsoleGone drives a webhook whose target answers 410 Gone, which
// makes hookd disable it, while its delivery log is open.
func TestConsoleGone(t *testing.T) {
	b := newBrowser(t, 90*time.Second)
	h := startConsoleHookd(t, map[string]string{
		"HOOKD_ALLOWED_TARGET_CIDRS": "127.0.0.0/8,::1/128",
		"HOOKD_RETRY_SCHEDULE":       "0s,1h",
	})
	tg := newTarget(t)
	tg.setAnswer(func(string, int) int { return http.StatusGone })
	wid := h.createWebhook(`{"kind":"STANDARD","target_url":"` + tg.URL + `/gone","events":["DEPLOYMENT_FAILURE"]}`)

	b.run("opening the webhook's log", chromedp.Navigate(h.URL+"/#/webhooks/"+wid))
	consoleSignIn(b, h.token, h.org)
	b.run("sending a test event", chromedp.WaitVisible(css("#send-test")), chromedp.Click(css("#send-test")))
	b.waitJS("the 410 in the log", `!!document.querySelector('#log-rows .code-4xx')`)
	waitFor(t, 10*time.Second, "hookd to disable the webhook", func() bool {
		var got struct {
			Enabled bool `json:"enabled"`
		}
		h.api.do("GET", "/organization/"+h.org.String()+"/webhook/"+wid, nil, &got)
		return !got.Enabled
	})

	// The page, live, says so without a reload, and why.
	b.waitJS("the page to show the webhook disabled", `(() => {
		const r = document.querySelector('.page-head-webhook .wh-reason');
		return document.querySelector('.page-head-webhook .pill').textContent === 'Disabled' && !!r && r.textContent.includes('410');
	})()`)

	// Retrying says why hookd refuses: the webhook is disabled.
	b.run("retrying", chromedp.Click(css(`#log-rows button[data-action=retry]`)))
	b.waitJS("the retry's answer", `!!document.querySelector('#toasts .toast-error')`)
	if got := b.eval(`document.querySelector('#toasts .toast-error').textContent`); !strings.Contains(got, "disabled") {
		t.Errorf("retrying a delivery of a disabled webhook says %q", got)
	}

	// The receiver is back: the page that says to enable the webhook
	// enables it, and the retry then goes out.
	tg.setAnswer(func(string, int) int { return http.StatusOK })
	b.run("enabling", chromedp.WaitVisible(css("#enable-webhook")), chromedp.Click(css("#enable-webhook")))
	b.waitJS("the page to show the webhook enabled", `document.querySelector('.page-head-webhook .pill').textContent === 'Enabled' &&
		!document.querySelector('.page-head-webhook .wh-reason') && document.getElementById('enable-webhook').hidden`)
	var got struct {
		Enabled bool   `json:"enabled"`
		Reason  string `json:"disabled_reason"`
	}
	h.api.do("GET", "/organization/"+h.org.String()+"/webhook/"+wid, nil, &got)
	if !got.Enabled || got.Reason != "" {
		t.Errorf("after Enable on its page, the webhook is %+v", got)
	}
	b.run("retrying again", chromedp.Click(css(`#log-rows button[data-action=retry]`)))
	tg.waitCount(t, "/gone", 2, 10*time.Second)
	b.waitJS("the success in the log", `!!document.querySelector('#log-rows .code-2xx')`)
}

// TestConsoleToggleKeepsEdits checks that the list's switch changes the
// state alone, even when the webhook was edited since the list was read.
func TestConsoleToggleKeepsEdits(t *testing.T) {
	b := newBrowser(t, 90*time.Second)
	h := startConsoleHookd(t, map[string]string{"HOOKD_ALLOWED_TARGET_CIDRS": "127.0.0.0/8,::1/128"})
	hooks := "/organization/" + h.org.String() + "/webhook"
	wid := h.createWebhook(`{"kind":"STANDARD","target_url":"http://127.0.0.1:9/hook","description":"first","events":["DEPLOYMENT_FAILURE"]}`)
	row := `#webhook-list li[data-id="` + wid + `"]`
	b.run("opening the console", chromedp.Navigate(h.URL+"/"))
	consoleSignIn(b, h.token, h.org)
	b.run("the list", chromedp.WaitVisible(css(row)))

	// Someone else edits the webhook; then the switch disables it.
	edited := `{"kind":"STANDARD","target_url":"http://127.0.0.1:9/other","description":"second","events":["DEPLOYMENT_FAILURE","DEPLOYMENT_SUCCESSFUL"],"project_names_filter":["api-*"]}`
	if st, _, body := h.api.do("PUT", hooks+"/"+wid, edited, nil); st != 200 {
		t.Fatalf("edit: %d %s", st, body)
	}
	b.run("disabling", chromedp.Click(css(row+` button[role=switch]`)))
	var got struct {
		TargetURL   string   `json:"target_url"`
		Description string   `json:"description"`
		Enabled     bool     `json:"enabled"`
		Events      []string `json:"events"`
		Projects    []string `json:"project_names_filter"`
	}
	waitFor(t, 10*time.Second, "the webhook to be disabled", func() bool {
		h.api.do("GET", hooks+"/"+wid, nil, &got)
		return !got.Enabled
	})
	if got.TargetURL != "http://127.0.0.1:9/other" || got.Description != "second" || len(got.Events) != 2 || len(got.Projects) != 1 {
		t.Errorf("disabling from the list undid an edit made meanwhile: %+v", got)
	}
	// The count above the list follows.
	b.waitJS("the switch to settle", `!document.querySelector('`+row+` button[role=switch]').disabled`)
	if got := b.eval(`document.querySelector('.page-head p.muted').textContent`); got != "1 webhook · 0 enabled" {
		t.Errorf("after disabling the only webhook, the list's count reads %q", got)
	}

	// An edit lands between the switch's read and its write: the page's
	// fetch makes it as soon as the switch has read the webhook.
	b.eval(`(() => {
		const orig = window.fetch;
		let done = false;
		window.fetch = async (url, opts) => {
			const resp = await orig(url, opts);
			if (!done && opts && opts.method === 'GET' && /\/webhook\/[^/]+$/.test(url)) {
				done = true;
				const edit = await orig(url, { method: 'PUT', headers: { Authorization: opts.headers.Authorization, 'Content-Type': 'application/json' },
					body: JSON.stringify({ kind: 'STANDARD', target_url: 'http://127.0.0.1:9/other', description: 'third', events: ['DEPLOYMENT_FAILURE'] }) });
				window.editStatus = edit.status;
			}
			return resp;
		};
		return 'installed';
	})()`)
	b.run("enabling", chromedp.Click(css(row+` button[role=switch]`)))
	waitFor(t, 10*time.Second, "the webhook to be enabled", func() bool {
		h.api.do("GET", hooks+"/"+wid, nil, &got)
		return got.Enabled
	})
	if st := b.eval(`String(window.editStatus)`); st != "200" {
		t.Fatalf("the edit made between the switch's read and write answered %s", st)
	}
	if got.Description != "third" || len(got.Events) != 1 {
		t.Errorf("enabling from the list undid an edit made between its read and its write: %+v", got)
	}
}

// TestConsoleWeekChartDays checks what the 7-day chart's bars say they
// cover: the last one ends now, so an attempt made today is in a bar
// that says today.
func TestConsoleWeekChartDays(t *testing.T) {
	b := newBrowser(t, 90*time.Second)
	h := startConsoleHookd(t, map[string]string{"HOOKD_ALLOWED_TARGET_CIDRS": "127.0.0.0/8,::1/128", "HOOKD_RETRY_SCHEDULE": "0s,1h"})
	tg := newTarget(t)
	tg.setAnswer(func(string, int) int { return http.StatusInternalServerError })
	hooks := "/organization/" + h.org.String() + "/webhook"
	wid := h.createWebhook(`{"kind":"STANDARD","target_url":"` + tg.URL + `/down","events":["DEPLOYMENT_FAILURE"]}`)
	if st, _, body := h.api.do("POST", hooks+"/"+wid+"/test", nil, nil); st != 202 {
		t.Fatalf("test: %d %s", st, body)
	}
	tg.waitCount(t, "/down", 1, 10*time.Second)
	b.run("opening the webhook", chromedp.Navigate(h.URL+"/#/webhooks/"+wid))
	consoleSignIn(b, h.token, h.org)
	b.waitJS("the 7-day chart with today's failure", `(() => {
		const bars = document.querySelectorAll('#chart-7d g.bar');
		return bars.length === 7 && bars[6].dataset.failures === '1';
	})()`)
	title := b.eval(`document.querySelectorAll('#chart-7d g.bar')[6].querySelector('title').textContent`)
	today := b.eval(`new Intl.DateTimeFormat(undefined, { weekday: 'short', day: 'numeric', month: 'short' }).format(new Date())`)
	if !strings.Contains(title, today) {
		t.Errorf("the 7-day chart's last bar, with today's failure, reads %q; want it to name today, %s", title, today)
	}
}

// TestConsoleEditKeepsUntouched edits, in the console, a webhook made
// through the API (as Terraform makes them): the fields the person did
// not touch must be saved as they were.
func TestConsoleEditKeepsUntouched(t *testing.T) {
	b := newBrowser(t, 90*time.Second)
	h := startConsoleHookd(t, map[string]string{"HOOKD_ALLOWED_TARGET_CIDRS": "127.0.0.0/8,::1/128"})
	hooks := "/organization/" + h.org.String() + "/webhook"
	// A heredoc's description ends with a newline.
	wid := h.createWebhook(`{"kind":"SLACK","target_url":"http://127.0.0.1:9/slack","description":"Managed by Terraform.\n","events":["DEPLOYMENT_FAILURE","DEPLOYMENT_STARTED"],"project_names_filter":["billing-*"],"environment_types_filter":["STAGING","PRODUCTION"],"target_secret":"s3cret-value","enabled":false}`)
	b.run("opening the edit form", chromedp.Navigate(h.URL+"/#/webhooks/"+wid+"/edit"))
	consoleSignIn(b, h.token, h.org)
	b.run("subscribing to one more event",
		chromedp.WaitVisible(css("#webhook-form")),
		clickElement(`input[name=events][value=DEPLOYMENT_SUCCESSFUL]`),
		chromedp.Click(css("#form-submit")),
		chromedp.WaitVisible(css("#send-test")),
	)
	var got struct {
		Kind        string   `json:"kind"`
		Description string   `json:"description"`
		Enabled     bool     `json:"enabled"`
		SecretSet   bool     `json:"target_secret_set"`
		Events      []string `json:"events"`
		Projects    []string `json:"project_names_filter"`
		Envs        []string `json:"environment_types_filter"`
	}
	h.api.do("GET", hooks+"/"+wid, nil, &got)
	// The lists keep their order too: the audit trail and Terraform
	// compare them as lists.
	if got.Kind != "SLACK" || got.Description != "Managed by Terraform.\n" || got.Enabled || !got.SecretSet ||
		strings.Join(got.Events, ",") != "DEPLOYMENT_FAILURE,DEPLOYMENT_STARTED,DEPLOYMENT_SUCCESSFUL" ||
		strings.Join(got.Projects, ",") != "billing-*" || strings.Join(got.Envs, ",") != "STAGING,PRODUCTION" {
		t.Errorf("after adding an event in the console, the webhook is %+v", got)
	}
}

// TestConsoleOldAttempt opens the page of an attempt that is no longer
// among the last 100 the API lists: the page must say so, not blame
// retention, which removed nothing.
func TestConsoleOldAttempt(t *testing.T) {
	b := newBrowser(t, 90*time.Second)
	h := startConsoleHookd(t, map[string]string{"HOOKD_ALLOWED_TARGET_CIDRS": "127.0.0.0/8,::1/128"})
	tg := newTarget(t)
	hooks := "/organization/" + h.org.String() + "/webhook"
	wid := h.createWebhook(`{"kind":"STANDARD","target_url":"` + tg.URL + `/ok","events":["DEPLOYMENT_FAILURE"]}`)
	var first struct {
		Results []struct {
			ID string `json:"id"`
		} `json:"results"`
	}
	for i := 0; i < 101; i++ {
		if st, _, body := h.api.do("POST", hooks+"/"+wid+"/test", nil, nil); st != 202 {
			t.Fatalf("test: %d %s", st, body)
		}
		if i == 0 {
			waitFor(t, 10*time.Second, "the first attempt", func() bool {
				h.api.do("GET", hooks+"/"+wid+"/event", nil, &first)
				return len(first.Results) == 1
			})
		}
	}
	waitFor(t, 30*time.Second, "the first attempt to leave the API's list", func() bool {
		var log struct {
			Results []struct {
				ID string `json:"id"`
			} `json:"results"`
		}
		h.api.do("GET", hooks+"/"+wid+"/event", nil, &log)
		return len(log.Results) == 100 && log.Results[99].ID != first.Results[0].ID
	})
	b.run("opening the first attempt", chromedp.Navigate(h.URL+"/#/webhooks/"+wid+"/attempts/"+first.Results[0].ID))
	consoleSignIn(b, h.token, h.org)
	b.waitJS("the page", `!!document.querySelector('#main .state')`)
	if got := b.eval(`document.querySelector('#main .state').innerText`); !strings.Contains(got, "100") {
		t.Errorf("the page of an attempt older than the last 100 reads %q", got)
	}
}

// TestConsoleListThrottled opens the list with a credential past its
// rate limit: a row whose stats were refused must say so, not wait for
// them for ever.
func TestConsoleListThrottled(t *testing.T) {
	b := newBrowser(t, 90*time.Second)
	h := startConsoleHookd(t, map[string]string{"HOOKD_API_RATE": "0.01", "HOOKD_API_BURST": "4"})
	hooks := "/organization/" + h.org.String() + "/webhook"
	for i := 0; i < 6; i++ {
		// A token each: the limit is per credential.
		api := call{t: t, base: h.URL, auth: "Token " + newToken(t, h.dbURL, h.org)}
		if st, _, body := api.do("POST", hooks, fmt.Sprintf(`{"kind":"STANDARD","target_url":"http://127.0.0.1:9/%d","events":["DEPLOYMENT_FAILURE"]}`, i), nil); st != 201 {
			t.Fatalf("create: %d %s", st, body)
		}
	}
	b.run("opening the console", chromedp.Navigate(h.URL+"/"))
	consoleSignIn(b, newToken(t, h.dbURL, h.org), h.org)
	b.run("the list", chromedp.WaitVisible(css("#webhook-list li[data-id]")))
	b.waitJS("every row's health answered", `[...document.querySelectorAll('#webhook-list .wh-health')].every((e) => e.textContent !== '…')`)
	if got := b.eval(`[...document.querySelectorAll('#webhook-list .wh-health')].map((e) => e.title).join('|')`); !strings.Contains(got, "Too many") && !strings.Contains(got, "too many") {
		t.Errorf("the refused rows' health says %q", got)
	}
}

// TestConsoleEditConflict saves the edit form after someone else changed
// the webhook while it was open: the save is refused, saying so, rather
// than undoing that change (or merging into it unseen); reloading shows
// the change and keeps what the person typed, and saving again works.
func TestConsoleEditConflict(t *testing.T) {
	b := newBrowser(t, 90*time.Second)
	h := startConsoleHookd(t, nil)
	hooks := "/organization/" + h.org.String() + "/webhook"
	wid := h.createWebhook(`{"kind":"STANDARD","target_url":"http://127.0.0.1:9/a","description":"first","events":["DEPLOYMENT_FAILURE"]}`)
	b.run("opening the edit form", chromedp.Navigate(h.URL+"/#/webhooks/"+wid+"/edit"))
	consoleSignIn(b, h.token, h.org)
	b.run("the form", chromedp.WaitVisible(css("#webhook-form")))
	if st, _, body := h.api.do("PUT", hooks+"/"+wid, `{"kind":"STANDARD","target_url":"http://127.0.0.1:9/b","description":"second","events":["DEPLOYMENT_FAILURE"],"environment_types_filter":["PRODUCTION"]}`, nil); st != 200 {
		t.Fatalf("edit: %d %s", st, body)
	}
	b.run("subscribing to one more event, describing it, and saving",
		clickElement(`input[name=events][value=DEPLOYMENT_STARTED]`),
		clearInput("#f-description"),
		chromedp.SendKeys(css("#f-description"), "mine"),
		chromedp.Click(css("#form-submit")),
	)
	b.waitJS("the save's refusal", `(() => { const e = document.getElementById('form-error'); return !e.hidden && e.textContent.includes('changed since you opened it'); })()`)
	type stored struct {
		TargetURL   string   `json:"target_url"`
		Description string   `json:"description"`
		Events      []string `json:"events"`
		Envs        []string `json:"environment_types_filter"`
	}
	var got stored
	h.api.do("GET", hooks+"/"+wid, nil, &got)
	if got.TargetURL != "http://127.0.0.1:9/b" || got.Description != "second" || len(got.Events) != 1 {
		t.Fatalf("a refused save changed the webhook: %+v", got)
	}

	b.run("reloading", chromedp.Click(css("#conflict-reload")))
	b.waitJS("the reloaded form", `document.getElementById('form-error').textContent.includes('Reloaded')`)
	if got := b.eval(`[document.getElementById('f-target_url').value, document.getElementById('f-description').value,
		[...document.querySelectorAll('input[name=events]:checked')].map((i) => i.value).join(','),
		[...document.querySelectorAll('input[name=environment_types_filter]:checked')].map((i) => i.value).join(',')].join(' | ')`); got != "http://127.0.0.1:9/b | mine | DEPLOYMENT_STARTED,DEPLOYMENT_FAILURE | PRODUCTION" {
		t.Errorf("the reloaded form shows %q; want the other edit with the person's changes on top", got)
	}
	if note := b.eval(`document.getElementById('form-error').textContent`); !strings.Contains(note, "Target URL") || !strings.Contains(note, "Description (yours kept)") {
		t.Errorf("the reloaded form's note says %q; want it to name what changed meanwhile", note)
	}
	b.run("saving again", chromedp.Click(css("#form-submit")), chromedp.WaitVisible(css("#send-test")))
	got = stored{}
	h.api.do("GET", hooks+"/"+wid, nil, &got)
	if got.TargetURL != "http://127.0.0.1:9/b" || got.Description != "mine" || strings.Join(got.Envs, ",") != "PRODUCTION" || len(got.Events) != 2 {
		t.Errorf("after reloading and saving, the webhook is %+v", got)
	}
}

// TestConsoleCopyOverHTTP copies a source's ingest URL from a console
// served over plain HTTP under a name, as on a private network: no
// secure context, so no navigator.clipboard.
func TestConsoleCopyOverHTTP(t *testing.T) {
	b := newBrowser(t, 90*time.Second, chromedp.Flag("host-resolver-rules", "MAP hookd.internal 127.0.0.1"))
	h := startConsoleHookd(t, nil)
	h.create("source", `{"kind":"FLUX","name":"flux","secret":"0123456789abcdef0123"}`)
	b.run("opening the console by name", chromedp.Navigate(strings.Replace(h.URL, "127.0.0.1", "hookd.internal", 1)+"/#/sources"))
	if got := b.eval(`String(window.isSecureContext)`); got != "false" {
		t.Fatalf("the page is a secure context (%s): the test needs one that is not", got)
	}
	consoleSignIn(b, h.token, h.org)
	b.run("copying the ingest URL", chromedp.WaitVisible(css("#source-rows button[aria-label='Copy ingest URL']")), chromedp.Click(css("#source-rows button[aria-label='Copy ingest URL']")))
	b.waitJS("the copy's answer", `!!document.querySelector('#toasts .toast')`)
	if got := b.eval(`document.querySelector('#toasts .toast').textContent`); got != "Copied ingest URL" {
		t.Errorf("copying the ingest URL over HTTP says %q", got)
	}
}

// TestConsoleSourceEditConflict saves a source's edit form after someone
// else changed its rules: the save is refused, saying so; reloading
// shows the rules and keeps the new name, and saving again saves both.
func TestConsoleSourceEditConflict(t *testing.T) {
	b, h, src := openSources(t)
	b.run("editing the source", chromedp.WaitVisible(css(`#source-rows button[data-action="edit"]`)), chromedp.Click(css(`#source-rows button[data-action="edit"]`)), chromedp.WaitVisible(css("#source-cancel")))
	if st, _, body := h.api.do("PUT", src, `{"kind":"FLUX","name":"flux","environment_types":[{"pattern":"prod*","type":"PRODUCTION"}]}`, nil); st != 200 {
		t.Fatalf("edit: %d %s", st, body)
	}
	b.run("renaming",
		clearInput("#f-source-name"),
		chromedp.SendKeys(css("#f-source-name"), "flux on eu-1"),
		chromedp.Click(css("#source-submit")),
	)
	b.waitJS("the save's refusal", `(() => { const e = document.getElementById('source-error'); return !e.hidden && e.textContent.includes('changed since you opened it'); })()`)
	type stored struct {
		Name  string `json:"name"`
		Rules []struct {
			Pattern string `json:"pattern"`
		} `json:"environment_types"`
	}
	var got stored
	h.api.do("GET", src, nil, &got)
	if got.Name != "flux" || len(got.Rules) != 1 {
		t.Fatalf("a refused save changed the source: %+v", got)
	}
	b.run("reloading", chromedp.Click(css("#conflict-reload")))
	b.waitJS("the reloaded form", `document.getElementById('source-error').textContent.includes('Reloaded')`)
	if got := b.eval(`document.getElementById('f-source-name').value + ' | ' + document.getElementById('f-source-rules').value`); got != "flux on eu-1 | prod*=PRODUCTION" {
		t.Errorf("the reloaded form shows %q; want the new rules and the person's name", got)
	}
	b.run("saving again", chromedp.Click(css("#source-submit")))
	b.waitJS("the renamed source", `(document.querySelector('#source-rows tr')?.innerText || '').includes('flux on eu-1')`)
	got = stored{}
	h.api.do("GET", src, nil, &got)
	if got.Name != "flux on eu-1" || len(got.Rules) != 1 {
		t.Errorf("after reloading and saving, the source is %+v", got)
	}
}

// TestConsoleAuditTimes reads a recovery in the audit log from another
// time zone than UTC: its window is shown in the reader's time, as every
// other time in the console, not as the API's UTC timestamps.
func TestConsoleAuditTimes(t *testing.T) {
	b := newBrowser(t, 90*time.Second, chromedp.Env("TZ=Europe/Paris"))
	if got := b.eval(`Intl.DateTimeFormat().resolvedOptions().timeZone`); got != "Europe/Paris" {
		t.Logf("the browser's time zone is %s", got)
	}
	h := startConsoleHookd(t, nil)
	hooks := "/organization/" + h.org.String() + "/webhook"
	wid := h.createWebhook(`{"kind":"STANDARD","target_url":"http://127.0.0.1:9/a","events":["DEPLOYMENT_FAILURE"]}`)
	since := time.Now().Add(-2 * time.Hour).UTC().Truncate(time.Minute).Format(time.RFC3339)
	if st, _, body := h.api.do("POST", hooks+"/"+wid+"/recover", `{"since":"`+since+`"}`, nil); st != 202 {
		t.Fatalf("recover: %d %s", st, body)
	}
	b.run("opening the audit log", chromedp.Navigate(h.URL+"/#/audit"))
	consoleSignIn(b, h.token, h.org)
	b.run("the recovery", chromedp.WaitVisible(css(`#audit-rows tr[data-action="webhook.recovered"] li[data-field=since]`)))
	got := b.eval(`document.querySelector('#audit-rows li[data-field=since] .change-after').textContent`)
	want := b.eval(`new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' }).format(new Date('` + since + `'))`)
	if got != want {
		t.Errorf("the recovery's start reads %q, want %q (the reader's time, like the rest of the console)", got, want)
	}
}

// TestConsoleRecoverPending recovers a short outage from the console:
// the deliveries wait for a retry an hour away, and the recover dialog's
// box for pending ones makes them due now. The toast and the audit log
// say how many.
func TestConsoleRecoverPending(t *testing.T) {
	b := newBrowser(t, 90*time.Second)
	h := startConsoleHookd(t, map[string]string{"HOOKD_ALLOWED_TARGET_CIDRS": "127.0.0.0/8,::1/128", "HOOKD_RETRY_SCHEDULE": "0s,1h"})
	tg := newTarget(t)
	down := tg.outage(http.StatusBadGateway)
	base := "/organization/" + h.org.String()
	wid := h.createWebhook(`{"kind":"STANDARD","target_url":"` + tg.URL + `/back","events":["DEPLOYMENT_FAILURE"]}`)
	for range 3 {
		if st, _, body := h.api.do("POST", base+"/deployment-event", `{"event_type":"DEPLOYMENT_FAILURE","project":{"name":"api"},"environment":{"name":"prod","mode":"PRODUCTION"}}`, nil); st != 202 {
			t.Fatalf("event: %d %s", st, body)
		}
	}
	waitFor(t, 30*time.Second, "three deliveries waiting for a retry", func() bool {
		var page struct{ Results []struct{ Attempts int } }
		h.api.do("GET", base+"/webhook/"+wid+"/delivery?status=pending", nil, &page)
		n := 0
		for _, d := range page.Results {
			if d.Attempts == 1 {
				n++
			}
		}
		return n == 3
	})

	down.Store(false)
	b.run("opening the webhook", chromedp.Navigate(h.URL+"/#/webhooks/"+wid))
	consoleSignIn(b, h.token, h.org)
	b.run("recovering with the pending ones",
		chromedp.WaitVisible(css("#recover-open")),
		chromedp.Click(css("#recover-open")),
		chromedp.WaitVisible(css("#recover-pending")),
		chromedp.Click(css("#recover-pending")),
	)
	b.screenshot("recover-pending-dialog")
	b.run("confirming the recovery", chromedp.Click(css("#recover-submit")), chromedp.WaitNotPresent(css("#recover-since")))
	b.waitJS("the recovery's answer", `!!document.querySelector('#toasts .toast')`)
	if got := b.eval(`document.querySelector('#toasts .toast').textContent`); got != "3 pending deliveries due now" {
		t.Errorf("the toast reads %q, want %q", got, "3 pending deliveries due now")
	}
	tg.waitCount(t, "/back", 6, 15*time.Second)

	b.run("opening the audit log", chromedp.Navigate(h.URL+"/#/audit"),
		chromedp.WaitVisible(css(`#audit-rows tr[data-action="webhook.recovered"] li[data-field=pending]`)))
	for field, want := range map[string]string{"pending": "3", "failed": "0", "deliveries": "3"} {
		if got := b.eval(`document.querySelector('#audit-rows li[data-field=` + field + `] .change-after').textContent`); got != want {
			t.Errorf("the recovery's %s reads %q, want %q", field, got, want)
		}
	}
	if got := len(tg.got("/back")); got != 6 {
		t.Errorf("the target got %d requests, want 6: one failed and one recovered per event", got)
	}
}

// confirmWebhookDelete types url into the open delete dialog, submits
// it, then runs then.
func confirmWebhookDelete(b *browser, url string, then ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	b.run("confirming the delete of "+url, append([]chromedp.Action[chromedp.Void]{
		clearInput("#delete-confirm"),
		chromedp.SendKeys(css("#delete-confirm"), url),
		chromedp.WaitEnabled(css("#delete-submit")),
		chromedp.Click(css("#delete-submit")),
	}, then...)...)
}

// openSources starts a consoleHookd with a FLUX source named "flux" and
// signs in on its Sources page; it returns the source's API path.
func openSources(t *testing.T) (*browser, *consoleHookd, string) {
	t.Helper()
	b := newBrowser(t, 90*time.Second)
	h := startConsoleHookd(t, nil)
	src := "/organization/" + h.org.String() + "/source/" + h.create("source", `{"kind":"FLUX","name":"flux","secret":"0123456789abcdef0123"}`)
	b.run("opening Sources", chromedp.Navigate(h.URL+"/#/sources"))
	consoleSignIn(b, h.token, h.org)
	return b, h, src
}

// TestConsoleDeleteConflict confirms a webhook's delete in a list read
// before someone else re-pointed it and disabled it: the delete is
// refused, the dialog says so and shows the webhook as it is now, and
// confirming again against that deletes it, unless it changed again
// while that delete was sent.
func TestConsoleDeleteConflict(t *testing.T) {
	b := newBrowser(t, 90*time.Second)
	h := startConsoleHookd(t, nil)
	hook := "/organization/" + h.org.String() + "/webhook/"
	wid := h.createWebhook(`{"kind":"STANDARD","target_url":"http://127.0.0.1:9/a","events":["DEPLOYMENT_FAILURE"]}`)
	row := `li.wh[data-id="` + wid + `"]`
	b.run("opening the list", chromedp.Navigate(h.URL+"/#/"))
	consoleSignIn(b, h.token, h.org)
	b.run("the row", chromedp.WaitVisible(css(row)))
	if st, _, body := h.api.do("PUT", hook+wid, `{"kind":"STANDARD","target_url":"http://127.0.0.1:9/b","enabled":false,"events":["DEPLOYMENT_FAILURE"]}`, nil); st != 200 {
		t.Fatalf("edit: %d %s", st, body)
	}
	b.run("deleting the webhook the page shows", chromedp.Click(css(row+` button[data-action=delete]`)), chromedp.WaitVisible(css("#delete-confirm")))
	confirmWebhookDelete(b, "http://127.0.0.1:9/a")
	b.waitJS("the delete's answer", `!document.querySelector('dialog') || document.querySelector('dialog').innerText.includes('changed since')`)
	if st, _, _ := h.api.do("GET", hook+wid, nil, nil); st != 200 {
		t.Fatalf("a delete confirmed for http://127.0.0.1:9/a deleted the webhook re-pointed to http://127.0.0.1:9/b meanwhile (GET %d)", st)
	}
	if got := b.eval(`document.querySelector('dialog').innerText`); !strings.Contains(got, "http://127.0.0.1:9/b") || !strings.Contains(got, "disabled") {
		t.Errorf("after the refusal the dialog says %q; want the new URL and that it is disabled", got)
	}

	// Someone re-points it again between the dialog's read of its version
	// and its DELETE: the If-Match it sends refuses the delete.
	b.eval(`(() => {
		const f = window.fetch;
		let once = false;
		window.fetch = async (url, req) => {
			if (!once && req && req.method === 'DELETE') {
				once = true;
				await f(url, { method: 'PUT', headers: { Authorization: req.headers.Authorization, 'Content-Type': 'application/json' },
					body: JSON.stringify({ kind: 'STANDARD', target_url: 'http://127.0.0.1:9/c', events: ['DEPLOYMENT_FAILURE'] }) });
			}
			return f(url, req);
		};
		return '';
	})()`)
	confirmWebhookDelete(b, "http://127.0.0.1:9/b")
	b.waitJS("the second refusal", `!document.querySelector('dialog') || document.querySelector('#delete-changed code')?.textContent === 'http://127.0.0.1:9/c'`)
	if st, _, _ := h.api.do("GET", hook+wid, nil, nil); st != 200 {
		t.Fatalf("a delete confirmed for http://127.0.0.1:9/b deleted the webhook re-pointed to http://127.0.0.1:9/c while it was sent (GET %d)", st)
	}
	confirmWebhookDelete(b, "http://127.0.0.1:9/c", chromedp.WaitNotPresent(css(row)))
	if st, _, _ := h.api.do("GET", hook+wid, nil, nil); st != 404 {
		t.Errorf("after confirming again, GET webhook = %d, want 404", st)
	}
}

// TestConsoleSourceDeleteConflict deletes a source from a list read
// before someone else renamed it: the first confirmation deletes nothing
// and the question asked next names the source as it is now; cancelled,
// the list shows it so; confirmed, it is deleted.
func TestConsoleSourceDeleteConflict(t *testing.T) {
	b, h, src := openSources(t)
	b.run("the source", chromedp.WaitVisible(css(`#source-rows button[data-action="delete"]`)))
	if st, _, body := h.api.do("PUT", src, `{"kind":"FLUX","name":"flux on eu-1"}`, nil); st != 200 {
		t.Fatalf("rename: %d %s", st, body)
	}
	// The person confirms the question the page asks, then cancels the
	// next one.
	b.eval(`(window.asked = [], window.confirm = (q) => window.asked.push(q) === 1, "")`)
	b.run("deleting the source the page shows", chromedp.Click(css(`#source-rows button[data-action="delete"]`)))
	b.waitJS("the delete's answer", `window.asked.length === 2 || !!document.getElementById('sources-empty')`)
	if st, _, _ := h.api.do("GET", src, nil, nil); st != 200 {
		t.Fatalf("a delete confirmed for “flux” deleted the source renamed meanwhile (GET %d)", st)
	}
	if q := b.eval(`window.asked[1]`); !strings.Contains(q, "changed since") || !strings.Contains(q, "“flux on eu-1”") {
		t.Errorf("after the refusal the console asks %q; want it to say the source changed and name it as it is now", q)
	}
	b.waitJS("the list as it is now", `(document.querySelector('#source-rows tr')?.innerText || '').includes('flux on eu-1')`)

	b.eval(`(window.asked = [], window.confirm = (q) => (window.asked.push(q), true), "")`)
	b.run("deleting it as it is now", chromedp.Click(css(`#source-rows button[data-action="delete"]`)), chromedp.WaitVisible(css("#sources-empty")))
	if st, _, _ := h.api.do("GET", src, nil, nil); st != 404 {
		t.Errorf("after confirming, GET source = %d, want 404", st)
	}
	if n := b.eval(`String(window.asked.length)`); n != "1" {
		t.Errorf("deleting the source as the page shows it asked %s questions, want 1", n)
	}
}

// TestConsoleUnreadable lists a webhook whose encryption key is gone
// (hookd restarted with another HOOKD_ENCRYPTION_KEY) beside a readable
// one, says why it shows no URL and what can be done, and deletes it.
func TestConsoleUnreadable(t *testing.T) {
	b := newBrowser(t, 90*time.Second)
	h := startConsoleHookd(t, map[string]string{"HOOKD_ENCRYPTION_KEY": generateKey(t),
		"HOOKD_ALLOWED_TARGET_CIDRS": "127.0.0.0/8,::1/128", "HOOKD_RETRY_SCHEDULE": "0s"})
	gone := h.createWebhook(`{"kind":"STANDARD","target_url":"http://127.0.0.1:9/gone","events":["DEPLOYMENT_FAILURE"]}`)
	goneSource := h.create("source", `{"kind":"FLUX","name":"flux","secret":"0123456789abcdef0123"}`)
	// An attempt in its log, which the page would offer to retry.
	hook := "/organization/" + h.org.String() + "/webhook/"
	if st, _, body := h.api.do("POST", "/organization/"+h.org.String()+"/deployment-event", deploymentEvent("DEPLOYMENT_FAILURE", "api", "PRODUCTION"), nil); st != 202 {
		t.Fatalf("event: %d %s", st, body)
	}
	waitFor(t, 30*time.Second, "the failed attempt", func() bool {
		var log struct{ Results []any }
		h.api.do("GET", hook+gone+"/event", nil, &log)
		return len(log.Results) > 0
	})
	h.server.Stop(syscall.SIGTERM)
	h.server = startServer(t, map[string]string{"HOOKD_DATABASE_URL": h.dbURL, "HOOKD_ENCRYPTION_KEY": generateKey(t)})
	h.api.base = h.URL
	kept := h.createWebhook(`{"kind":"STANDARD","target_url":"http://127.0.0.1:9/kept","events":["DEPLOYMENT_FAILURE"]}`)

	goneRow, keptRow := `li.wh[data-id="`+gone+`"]`, `li.wh[data-id="`+kept+`"]`
	b.run("opening the list", chromedp.Navigate(h.URL+"/#/"))
	consoleSignIn(b, h.token, h.org)
	b.run("both rows", chromedp.WaitVisible(css(goneRow)), chromedp.WaitVisible(css(keptRow)))
	if got := b.eval(`document.querySelector('` + goneRow + ` .wh-reason')?.innerText || ''`); !strings.Contains(got, "Cannot be decrypted") || !strings.Contains(got, "HOOKD_ENCRYPTION_KEY") {
		t.Errorf("the unreadable webhook's row says %q; want why it cannot be read and what to do", got)
	}
	if got := b.eval(`document.querySelector('` + keptRow + ` .wh-reason')?.innerText || ''`); got != "" {
		t.Errorf("the readable webhook's row says %q; want no note", got)
	}
	// What the API would refuse (409) is not offered: editing it, and
	// sending to it; the readable one keeps all of it.
	edits := func(row string) string {
		return b.eval(`String(!!document.querySelector('` + row + ` a[href$="/edit"]'))`)
	}
	if edits(goneRow) != "false" || edits(keptRow) != "true" {
		t.Errorf("edit links: unreadable %s, readable %s; want only the readable one's", edits(goneRow), edits(keptRow))
	}
	b.run("the unreadable webhook's page", chromedp.Navigate(h.URL+"/#/webhooks/"+gone), chromedp.WaitVisible(css("#health")), chromedp.WaitVisible(css("#log-rows tr")))
	b.waitJS("its note", `(document.querySelector('.page-head .wh-reason')?.innerText || '').includes('Cannot be decrypted')`)
	if got := b.eval(`['#edit-webhook', '#send-test', '#recover-open', '[data-action=retry]'].filter((s) => document.querySelector(s)).join(' ')`); got != "" {
		t.Errorf("the unreadable webhook's page offers %s; want none of what would send to it or edit it", got)
	}
	b.run("back to the list", chromedp.Navigate(h.URL+"/#/"), chromedp.WaitVisible(css(goneRow)))
	b.run("deleting the unreadable webhook", chromedp.Click(css(goneRow+` button[data-action=delete]`)), chromedp.WaitVisible(css("#delete-confirm")))
	confirmWebhookDelete(b, "urn:hookd:unreadable", chromedp.WaitNotPresent(css(goneRow)))
	if st, _, _ := h.api.do("GET", hook+gone, nil, nil); st != 404 {
		t.Errorf("after the delete, GET of the unreadable webhook = %d, want 404", st)
	}
	if st, _, _ := h.api.do("GET", hook+kept, nil, nil); st != 200 {
		t.Errorf("after the delete, GET of the readable webhook = %d, want 200", st)
	}

	// The source likewise: said, and not offered to edit.
	srcRow := `tr[data-id="` + goneSource + `"]`
	b.run("the Sources page", chromedp.Navigate(h.URL+"/#/sources"), chromedp.WaitVisible(css(srcRow)))
	if got := b.eval(`document.querySelector('` + srcRow + ` td[data-label=Secret]').innerText`); got != "cannot be decrypted" {
		t.Errorf("the unreadable source's secret shows as %q, want \"cannot be decrypted\"", got)
	}
	if got := b.eval(`String(!!document.querySelector('` + srcRow + ` [data-action=edit]'))`); got != "false" {
		t.Errorf("the unreadable source is offered to edit (%s)", got)
	}
}

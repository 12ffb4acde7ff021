package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/google/uuid"
)

// chromiumPath is Debian's Chromium; CI installs it, and nothing here
// downloads a browser.
const chromiumPath = "/usr/bin/chromium"

// screenshotDir is where the console's screenshots go: artifacts/ at the
// repository root (git ignores it).
var screenshotDir = filepath.Join("..", "..", "artifacts", "screenshots")

// css is a CSS selector (chromedp's plain strings are DOM searches).
type css = chromedp.CSS

// browser is a headless Chromium tab driven by chromedp.
type browser struct {
	t   *testing.T
	ctx context.Context
}

func newBrowser(t *testing.T, timeout time.Duration, extra ...chromedp.ExecAllocatorOption) *browser {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the console browser test needs Chromium at %s (apt-get install -y chromium): %v", chromiumPath, err)
		}
		t.Skipf("no Chromium at %s (apt-get install -y chromium); skipping the console browser test", chromiumPath)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("mute-audio", true),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.Flag("lang", "en-US"),
	}
	opts = append(opts, extra...)
	ctx, cancelTimeout := context.WithTimeout(context.Background(), timeout)
	ctx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	ctx, cancelTab := chromedp.NewContext(ctx)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
		cancelTimeout()
	})
	// The first action starts the browser, which lives as long as the
	// context of that call: give it the test's context.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatalf("starting %s: %v", chromiumPath, err)
	}
	return &browser{t: t, ctx: ctx}
}

// run performs actions; on failure it saves a screenshot of the page
// before failing the test.
func (b *browser) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	// Each step gets its own deadline, so a stuck step fails with a
	// screenshot rather than ending the browser.
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		if b.ctx.Err() == nil {
			b.screenshot("failure")
		}
		b.t.Fatalf("%s: %v", what, err)
	}
}

// screenshot saves a full-page PNG under artifacts/screenshots/, without
// the transient toasts.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	err := chromedp.Do(b.ctx,
		chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := chromedp.Evaluate[bool](`document.getElementById('toasts').replaceChildren(), true`)(ctx, t)
			return err
		}),
		chromedp.Sleep(350), // let transitions settle; only for the picture
	)
	var png []byte
	if err == nil {
		png, err = chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	}
	if err != nil {
		b.t.Errorf("screenshot %s: %v", name, err)
		return
	}
	if err := os.MkdirAll(screenshotDir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	path := filepath.Join(screenshotDir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s", path)
}

// clearInput empties a text field (chromedp.SetValue refuses "").
func clearInput(selector string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Evaluate[bool](fmt.Sprintf(`(document.querySelector(%q).value = "", true)`, selector))(ctx, t)
		return err
	})
}

// clickElement clicks an element from script, as a click on it
// dispatches: on a loaded machine a mouse click at a checkbox's
// coordinates was lost once (the page still settling), and the choices
// it made were never checked.
func clickElement(selector string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Evaluate[bool](fmt.Sprintf(`(document.querySelector(%q).click(), true)`, selector))(ctx, t)
		return err
	})
}

// eval returns the value of a JavaScript expression.
func (b *browser) eval(expr string) string {
	b.t.Helper()
	out, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		b.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return out
}

// waitJS polls until a JavaScript expression is true.
func (b *browser) waitJS(what, expr string) {
	b.t.Helper()
	_, err := chromedp.Run(b.ctx, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(15*time.Second)))
	if err != nil {
		b.screenshot("failure")
		b.t.Fatalf("waiting for %s: %v", what, err)
	}
}

func TestConsole(t *testing.T) {
	b := newBrowser(t, 90*time.Second)

	dbURL := "sqlite:" + filepath.Join(t.TempDir(), "hookd.db")
	srv := startServer(t, map[string]string{
		"HOOKD_DATABASE_URL":         dbURL,
		"HOOKD_ALLOWED_TARGET_CIDRS": "127.0.0.0/8,::1/128",
		// One attempt, then a long wait: the log then holds exactly the
		// attempts this test asks for.
		"HOOKD_RETRY_SCHEDULE": "0s,1h",
	})
	org := uuid.New()
	token := newToken(t, dbURL, org)
	api := call{t: t, base: srv.URL, auth: "Token " + token}
	tg := newTarget(t)
	// The second request (the reported event) fails; the test event and
	// its retry succeed.
	tg.setAnswer(func(path string, n int) int {
		if n == 2 {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})

	t.Run("served beside the API", func(t *testing.T) {
		for _, c := range []struct{ path, ctype string }{
			{"/", "text/html"},
			{"/console/app.js", "text/javascript"},
			{"/console/app.css", "text/css"},
		} {
			resp, err := http.Get(srv.URL + c.path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), c.ctype) {
				t.Errorf("GET %s = %d %q, want 200 %s", c.path, resp.StatusCode, resp.Header.Get("Content-Type"), c.ctype)
			}
		}
		for _, path := range []string{"/nope", "/console/nope.js", "/organization/" + org.String() + "/nope"} {
			resp, err := http.Get(srv.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 404 || !strings.Contains(string(body), `"status":404`) {
				t.Errorf("GET %s = %d %s, want the API's JSON 404", path, resp.StatusCode, body)
			}
		}
	})

	// Sign in: a wrong token is refused, the right one is kept in
	// sessionStorage only.
	b.run("opening the console", chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(css("#signin-token")))
	b.screenshot("1-sign-in")
	b.run("signing in with a bad token",
		chromedp.SendKeys(css("#signin-token"), "hkd_not-a-token"),
		chromedp.SendKeys(css("#signin-org"), org.String()),
		chromedp.Click(css("#signin-submit")),
		chromedp.WaitVisible(css("#signin-error")),
	)
	b.run("signing in",
		chromedp.SetValue(css("#signin-token"), token),
		chromedp.Click(css("#signin-submit")),
		chromedp.WaitVisible(css("#empty-state")),
	)
	if got := b.eval(`JSON.parse(sessionStorage.getItem('hookd.console.session')).org + '|' + localStorage.length + '|' + document.cookie`); got != org.String()+"|0|" {
		t.Errorf("after sign-in, session|localStorage.length|cookie = %q, want only the session in sessionStorage", got)
	}
	b.screenshot("2-webhooks-empty")

	// Create, with a validation error first.
	hookURL := tg.URL + "/hooks/qovery-deployments"
	b.run("opening the form",
		chromedp.Click(css("#empty-add")),
		chromedp.WaitVisible(css("#webhook-form")),
	)
	// The form is ready when it has put the focus on the URL, as a person
	// sees it; typing before that can land in a form being replaced.
	b.waitJS("the form to take the focus", `document.activeElement && document.activeElement.id === 'f-target_url'`)
	b.run("filling the form",
		chromedp.SendKeys(css("#f-target_url"), "ftp://"+strings.TrimPrefix(hookURL, "http://")),
		chromedp.SendKeys(css("#f-description"), "Deployment notifications for the platform team"),
		clickElement(`input[name=events][value=DEPLOYMENT_CANCELLED]`),
		chromedp.SendKeys(css("#f-project_names_filter"), "api-*"+kb.Enter),
	)
	b.waitJS("the first project tag", `document.querySelectorAll('#webhook-form li.tag').length === 1`)
	b.run("adding a second tag", chromedp.SendKeys(css("#f-project_names_filter"), "web"+kb.Enter))
	// The tags re-render as they are added; click on after they settle.
	b.waitJS("both project tags", `document.querySelectorAll('#webhook-form li.tag').length === 2`)
	b.run("choosing environments",
		clickElement(`input[name=environment_types_filter][value=PRODUCTION]`),
		clickElement(`input[name=environment_types_filter][value=STAGING]`),
		chromedp.SendKeys(css("#f-target_secret"), "whsec_c2VjcmV0LWZvci10aGUtY29uc29sZS10ZXN0"),
	)
	b.waitJS("the choices to be checked", `document.querySelector('input[name=environment_types_filter][value=PRODUCTION]').checked && document.querySelector('input[name=environment_types_filter][value=STAGING]').checked && document.querySelector('input[name=events][value=DEPLOYMENT_CANCELLED]').checked === false`)
	b.run("submitting",
		chromedp.Click(css("#form-submit")),
		chromedp.WaitVisible(css("#err-target_url")),
	)
	if msg := b.eval(`document.getElementById('err-target_url').textContent`); !strings.Contains(msg, "http://") {
		t.Errorf("target_url error = %q, want the API's reason", msg)
	}
	b.screenshot("3-webhook-form-error")
	b.run("fixing the URL",
		clearInput("#f-target_url"),
		chromedp.SendKeys(css("#f-target_url"), hookURL),
		chromedp.WaitNotVisible(css("#err-target_url")),
	)
	b.screenshot("3-webhook-form")
	b.run("creating the webhook",
		chromedp.Click(css("#form-submit")),
		chromedp.WaitVisible(css(`#webhook-list li[data-id]`)),
	)
	var list struct {
		Results []struct {
			ID                 string   `json:"id"`
			TargetURL          string   `json:"target_url"`
			Description        string   `json:"description"`
			Enabled            bool     `json:"enabled"`
			Events             []string `json:"events"`
			ProjectNamesFilter []string `json:"project_names_filter"`
			EnvTypes           []string `json:"environment_types_filter"`
			SecretSet          bool     `json:"target_secret_set"`
		} `json:"results"`
	}
	api.do("GET", "/organization/"+org.String()+"/webhook", nil, &list)
	if len(list.Results) != 1 {
		t.Fatalf("after create, the API lists %d webhooks, want 1", len(list.Results))
	}
	w := list.Results[0]
	if w.TargetURL != hookURL || len(w.Events) != 3 || strings.Join(w.ProjectNamesFilter, ",") != "api-*,web" ||
		strings.Join(w.EnvTypes, ",") != "PRODUCTION,STAGING" || !w.SecretSet || !w.Enabled {
		t.Errorf("created webhook = %+v", w)
	}
	row := `#webhook-list li[data-id="` + w.ID + `"]`

	// More webhooks, so the list shows a Slack one and a long URL.
	for _, body := range []string{
		`{"kind":"SLACK","target_url":"https://hooks.slack.com/services/T0001/B0002/XXXXXXXXXXXXXXXXXXXXXXXX","description":"#deployments channel","events":["DEPLOYMENT_FAILURE","DEPLOYMENT_SUCCESSFUL"],"environment_types_filter":["PRODUCTION"]}`,
		`{"kind":"STANDARD","target_url":"https://very-long-subdomain-name.internal.example.com/api/v2/integrations/webhooks/qovery/receive?tenant=acme-corporation-europe-west&token=abcdef0123456789","events":["DEPLOYMENT_STARTED"],"enabled":false}`,
	} {
		if st, _, resp := api.do("POST", "/organization/"+org.String()+"/webhook", body, nil); st != 201 {
			t.Fatalf("creating a webhook: %d %s", st, resp)
		}
	}
	b.run("reloading the list", chromedp.Reload(), chromedp.WaitVisible(css(row)))
	if n := b.eval(`String(document.querySelectorAll('#webhook-list li').length)`); n != "3" {
		t.Errorf("the list shows %s webhooks, want 3", n)
	}
	b.screenshot("4-webhooks")

	getWebhook := func() (st int, out struct {
		Description string `json:"description"`
		Enabled     bool   `json:"enabled"`
		SecretSet   bool   `json:"target_secret_set"`
		Events      []string
	}) {
		st, _, _ = api.do("GET", "/organization/"+org.String()+"/webhook/"+w.ID, nil, &out)
		return st, out
	}

	// Toggle: the switch saves at once.
	b.run("disabling", chromedp.Click(css(row+` button[role=switch]`)))
	waitFor(t, 10*time.Second, "the webhook to be disabled", func() bool { _, g := getWebhook(); return !g.Enabled })
	b.run("enabling", chromedp.WaitEnabled(css(row+` button[role=switch]`)), chromedp.Click(css(row+` button[role=switch]`)))
	waitFor(t, 10*time.Second, "the webhook to be enabled", func() bool { _, g := getWebhook(); return g.Enabled })

	// Edit keeps the secret unless told otherwise.
	b.run("editing",
		chromedp.WaitEnabled(css(row+` button[role=switch]`)),
		chromedp.Click(css(row+` a[href$="/edit"]`)),
		chromedp.WaitVisible(css("#secret-state")),
		chromedp.SetValue(css("#f-description"), "Deployment notifications (edited)"),
		chromedp.Click(css("#form-submit")),
		chromedp.WaitVisible(css("#send-test")),
	)
	if _, g := getWebhook(); g.Description != "Deployment notifications (edited)" || !g.SecretSet || len(g.Events) != 3 {
		t.Errorf("after edit, webhook = %+v", g)
	}

	// The audit log shows every change so far, newest first, the edit on
	// top with who made it and what it changed, and never the secret.
	b.run("opening the audit log", chromedp.Click(css("#nav-audit")), chromedp.WaitVisible(css("#audit-rows tr")))
	b.waitJS("the edit on top of the audit log", `(() => {
		const r = document.querySelector('#audit-rows tr');
		const d = r && r.querySelector('li[data-field=description]');
		return r.dataset.action === 'webhook.updated' && !!d && d.innerText.includes('Deployment notifications (edited)');
	})()`)
	if got := b.eval(`[...document.querySelectorAll('#audit-rows tr')].map(r => r.dataset.action).join(',')`); got !=
		"webhook.updated,webhook.enabled,webhook.disabled,webhook.created,webhook.created,webhook.created,token.created" {
		t.Errorf("the audit log lists %s", got)
	}
	// The console's token made the changes; the CLI created it.
	if got := b.eval(`(() => {
		const rows = [...document.querySelectorAll('#audit-rows tr')];
		const tok = rows[rows.length - 1];
		return rows[0].querySelector('.actor').title === 'API token ' + tok.querySelector('.audit-resource').title
			? tok.querySelector('.actor-kind').textContent : 'the edit is not signed by the token the CLI created';
	})()`); got != "hookd CLI" {
		t.Errorf("audit log actors: %s", got)
	}
	if secret := b.eval(`[...document.querySelectorAll('#audit-rows tr[data-action="webhook.created"]')].pop().querySelector('li[data-field=target_secret]')?.innerText || ''`); !strings.Contains(secret, "set") {
		t.Errorf("the creation's secret change reads %q, want set", secret)
	}
	if strings.Contains(b.eval(`document.body.innerText`), "c2VjcmV0") {
		t.Error("the audit log shows the secret")
	}
	b.screenshot("4b-audit-log")
	b.run("back to the delivery log", chromedp.NavigateBack(), chromedp.WaitVisible(css("#send-test")))

	// Delivery log: a test event appears by itself (polling), and so does
	// a failed delivery.
	b.run("sending a test event",
		chromedp.Click(css("#send-test")),
		chromedp.WaitVisible(css(`#log-rows tr .code-2xx`)),
	)
	tg.waitCount(t, "/hooks/qovery-deployments", 1, 10*time.Second)
	st, _, resp := api.do("POST", "/organization/"+org.String()+"/deployment-event", map[string]any{
		"event_type":  "DEPLOYMENT_FAILURE",
		"project":     map[string]string{"name": "api-gateway"},
		"environment": map[string]string{"name": "production-eu", "mode": "PRODUCTION", "cluster_name": "eu-west-3"},
	}, nil)
	if st != 202 {
		t.Fatalf("reporting an event: %d %s", st, resp)
	}
	b.waitJS("the failed attempt in the log", `!!document.querySelector('#log-rows tr .code-5xx')`)
	b.run("filtering failures", chromedp.Click(css(`button[data-filter=failure]`)))
	b.waitJS("only the failure", `document.querySelectorAll('#log-rows tr').length === 1 && !!document.querySelector('#log-rows .code-5xx')`)
	b.run("showing all", chromedp.Click(css(`button[data-filter=all]`)))
	b.waitJS("both attempts", `document.querySelectorAll('#log-rows tr').length === 2`)
	b.screenshot("5-delivery-log")

	// Detail of the test event's attempt, then retry it.
	var events struct {
		Results []struct {
			ID         string         `json:"id"`
			Status     int            `json:"target_response_status_code"`
			DeliveryID string         `json:"delivery_id"`
			Request    map[string]any `json:"request"`
		} `json:"results"`
	}
	api.do("GET", "/organization/"+org.String()+"/webhook/"+w.ID+"/event", nil, &events)
	var attemptID, payloadID string
	for _, e := range events.Results {
		if e.Status == 200 {
			attemptID, payloadID = e.ID, fmt.Sprint(e.Request["payload_id"])
		}
	}
	if attemptID == "" {
		t.Fatalf("no successful attempt in %+v", events.Results)
	}
	b.run("opening the attempt",
		chromedp.Click(css(`#log-rows tr[data-id="`+attemptID+`"] a.row-link`)),
		chromedp.WaitVisible(css("#request-headers")),
	)
	headers := b.eval(`document.getElementById('request-headers').innerText`)
	for _, want := range []string{"webhook-id\t" + payloadID, "User-Agent\thookd/", "webhook-signature\tv1,••••", "Qovery-Signature\t••••"} {
		if !strings.Contains(headers, want) {
			t.Errorf("headers shown:\n%s\nwant %q", headers, want)
		}
	}
	if strings.Contains(b.eval(`document.body.innerText`), "c2VjcmV0") {
		t.Error("the detail page shows the secret")
	}
	b.screenshot("6-delivery-detail")
	b.run("retrying", chromedp.Click(css("#retry-delivery")))
	tg.waitCount(t, "/hooks/qovery-deployments", 3, 10*time.Second)
	b.run("back to the log", chromedp.Click(css(`a.back`)), chromedp.WaitVisible(css("#log-rows")))
	b.waitJS("the retry's attempt in the log", `[...document.querySelectorAll('#log-rows .attempt-no')].some(e => e.textContent === '#2')`)

	// Phone-sized screens.
	b.run("phone viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2)))
	b.screenshot("7-delivery-log-phone")
	b.run("list on a phone", chromedp.Navigate(srv.URL+"/#/"), chromedp.WaitVisible(css(row)))
	b.screenshot("8-webhooks-phone")
	b.run("laptop viewport", chromedp.EmulateViewport(1280, 900))

	// Delete, confirmed by typing the URL.
	b.run("deleting",
		chromedp.Click(css(row+` button[data-action=delete]`)),
		chromedp.WaitVisible(css("#delete-confirm")),
	)
	if b.eval(`String(document.getElementById('delete-submit').disabled)`) != "true" {
		t.Error("delete is enabled before the URL is typed")
	}
	b.run("confirming",
		chromedp.SendKeys(css("#delete-confirm"), hookURL),
		chromedp.WaitEnabled(css("#delete-submit")),
		chromedp.Click(css("#delete-submit")),
		chromedp.WaitNotPresent(css(row)),
	)
	if st, _ := getWebhook(); st != 404 {
		t.Errorf("after delete, GET webhook = %d, want 404", st)
	}

	b.run("signing out", chromedp.Click(css("#sign-out")), chromedp.WaitVisible(css("#signin-token")))
	if got := b.eval(`String(sessionStorage.length)`); got != "0" {
		t.Errorf("after sign-out, sessionStorage holds %s items, want 0", got)
	}
}

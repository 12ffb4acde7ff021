package main

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestConsoleHostileResponseBodies opens attempts whose target answered
// a body made to harm the page that shows it (a target is anyone's
// server, and hookd keeps 64 KiB of its answer): markup must stay text,
// and no body may freeze the tab, whether by the JSON highlighter
// rescanning it or by pretty-printing blowing it up.
func TestConsoleHostileResponseBodies(t *testing.T) {
	b := newBrowser(t, 120*time.Second)
	h := startConsoleHookd(t, map[string]string{"HOOKD_ALLOWED_TARGET_CIDRS": "127.0.0.0/8,::1/128", "HOOKD_RETRY_SCHEDULE": "0s,1h"})
	const markup = `<img src=x onerror="document.title='pwned'"><script>document.title='pwned'</script>`
	inJSON := strings.ReplaceAll(markup, `"`, `\"`)
	cases := []struct {
		name, body string
		// shown is the text the page shows, when not the body as it came.
		shown string
		// tokens, when set, is how many tokens the highlighter finds.
		tokens int
	}{
		{name: "markup", body: markup},
		{name: "markup-in-json", body: `{"` + inJSON + `":"` + inJSON + `"}`, shown: "{\n  \"" + inJSON + "\": \"" + inJSON + "\"\n}"},
		// An unclosed string of escaped quotes, 64 KiB: a string token
		// that had to close was tried from each of them to the end (the
		// tab froze for 3–4 s), and none was found. Scanned once, it is
		// one string token, to the end.
		{name: "escaped-quotes", body: `"` + strings.Repeat(`\"`, 32767), tokens: 1},
		// 8 KB of brackets pretty-print to 32 MB of indentation.
		{name: "deep", body: strings.Repeat("[", 4000) + strings.Repeat("]", 4000)},
	}
	bodies := map[string]string{}
	for _, c := range cases {
		bodies["/"+c.name] = c.body
	}
	tg := newTargetFunc(t, func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(bodies[r.URL.Path]))
	})

	b.run("opening the console", chromedp.Navigate(h.URL+"/"))
	consoleSignIn(b, h.token, h.org)
	b.waitJS("the webhook list", `!!document.getElementById('empty-state')`)
	// The longest task (the page frozen) since __longest was last reset.
	b.eval(`window.__longest = 0; new PerformanceObserver((l) => { for (const e of l.getEntries()) window.__longest = Math.max(window.__longest, e.duration); }).observe({ type: 'longtask' }); ''`)

	hooks := "/organization/" + h.org.String() + "/webhook"
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wid := h.createWebhook(`{"kind":"STANDARD","target_url":"` + tg + "/" + c.name + `","events":["DEPLOYMENT_FAILURE"]}`)
			if st, _, resp := h.api.do("POST", hooks+"/"+wid+"/test", nil, nil); st != 202 {
				t.Fatalf("test: %d %s", st, resp)
			}
			var log struct {
				Results []struct {
					ID   string `json:"id"`
					Body string `json:"target_response_body"`
				} `json:"results"`
			}
			waitFor(t, 10*time.Second, "the attempt", func() bool {
				h.api.do("GET", hooks+"/"+wid+"/event", nil, &log)
				return len(log.Results) == 1
			})
			if log.Results[0].Body != c.body {
				t.Fatalf("hookd kept %d bytes of the %d-byte body", len(log.Results[0].Body), len(c.body))
			}

			b.eval(`location.hash = '#/'; ''`)
			b.waitJS("the webhook list", `!!document.getElementById('webhook-list')`)
			b.eval(`window.__longest = 0; location.hash = '#/webhooks/` + wid + `/attempts/` + log.Results[0].ID + `'; ''`)
			b.waitJS("the response body", `!!document.querySelector('#response-panel pre.code')`)
			pre := `document.querySelector('#response-panel pre.code')`
			if got := b.eval(`String(` + pre + `.querySelectorAll(':not(span)').length)`); got != "0" {
				t.Errorf("the response body holds %s elements other than the highlighter's spans", got)
			}
			if got := b.eval(`document.title`); strings.Contains(got, "pwned") {
				t.Errorf("the body's markup ran: the title is %q", got)
			}
			want := c.shown
			if want == "" {
				want = c.body
			}
			if got := b.eval(pre + `.textContent`); got != want {
				t.Errorf("the page shows the %d-byte body as %d characters, %.100q…; want %d, %.100q…", len(c.body), len(got), got, len(want), want)
			}
			// A frame after the page is built, so that its layout counts.
			b.eval(`window.__painted = false; requestAnimationFrame(() => setTimeout(() => { window.__painted = true; }, 0)); ''`)
			b.waitJS("a frame", `window.__painted`)
			if c.tokens > 0 {
				if got := b.eval(`String(` + pre + `.querySelectorAll('span').length)`); got != strconv.Itoa(c.tokens) {
					t.Errorf("the highlighter found %s tokens in the body, want %d", got, c.tokens)
				}
			}
			// Time is the machine's, not the code's: told, not checked.
			t.Logf("the longest task while showing the body: %s ms", b.eval(`String(Math.round(window.__longest))`))
		})
	}
}

package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestConsoleDeliveriesPaging looks back, in the console, at an outage
// older than the delivery log's last 100 attempts: 60 deliveries failed,
// then 70 succeeded. From the log, the older deliveries page back, the
// failed ones alone, each page at its own URL that reloads and goes back
// like any other page, and an old one can be retried.
func TestConsoleDeliveriesPaging(t *testing.T) {
	b := newBrowser(t, 150*time.Second)
	h := startConsoleHookd(t, map[string]string{"HOOKD_ALLOWED_TARGET_CIDRS": "127.0.0.0/8,::1/128", "HOOKD_RETRY_SCHEDULE": "0s"})
	tg := newTarget(t)
	tg.setAnswer(func(string, int) int { return http.StatusServiceUnavailable })
	hooks := "/organization/" + h.org.String() + "/webhook"
	wid := h.createWebhook(`{"kind":"STANDARD","target_url":"` + tg.URL + `/hook","events":["DEPLOYMENT_FAILURE"]}`)
	send := func(n, total int) {
		t.Helper()
		for i := 0; i < n; i++ {
			if st, _, body := h.api.do("POST", hooks+"/"+wid+"/test", nil, nil); st != 202 {
				t.Fatalf("test: %d %s", st, body)
			}
		}
		tg.waitCount(t, "/hook", total, 60*time.Second)
	}
	send(60, 60) // the outage: one attempt each (no retry), all failed
	tg.setAnswer(func(string, int) int { return http.StatusOK })
	send(70, 130)
	type page struct {
		Results []struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		} `json:"results"`
		NextCursor *string `json:"next_cursor"`
	}
	waitFor(t, 30*time.Second, "the 70 successes recorded", func() bool {
		var p page
		h.api.do("GET", hooks+"/"+wid+"/delivery?status=succeeded&limit=100", nil, &p)
		return len(p.Results) == 70
	})

	b.run("opening the delivery log", chromedp.Navigate(h.URL+"/#/webhooks/"+wid))
	consoleSignIn(b, h.token, h.org)
	b.waitJS("the log, full", `document.querySelectorAll('#log-rows tr').length === 100`)
	b.run("going to older deliveries", chromedp.WaitVisible(css("#older-deliveries")), chromedp.Click(css("#older-deliveries")))
	b.run("filtering the failed ones", chromedp.WaitVisible(css(`#main a.seg[data-status=failed]`)), chromedp.Click(css(`#main a.seg[data-status=failed]`)))
	b.waitJS("the first page of failures", `location.hash.includes('status=failed') && document.querySelectorAll('#delivery-rows tr[data-status=failed]').length === 50`)
	ids := func() []string {
		return strings.Split(b.eval(`[...document.querySelectorAll('#delivery-rows tr')].map((r) => r.dataset.id + ':' + r.dataset.status).join(' ')`), " ")
	}
	first := ids()
	b.run("paging back", chromedp.Click(css("#deliveries-older")))
	b.waitJS("the second page", `location.hash.includes('cursor=') && document.querySelectorAll('#delivery-rows tr').length === 10`)
	second := ids()
	olderURL := b.eval(`location.href`)
	if got := b.eval(`String(!!document.getElementById('deliveries-older'))`); got != "false" {
		t.Errorf("the last page of failures offers an older one")
	}
	seen := map[string]bool{}
	for _, id := range append(first, second...) {
		if !strings.HasSuffix(id, ":failed") || seen[id] {
			t.Errorf("the pages of failed deliveries hold %s twice or not failed", id)
		}
		seen[id] = true
	}
	if len(seen) != 60 {
		t.Errorf("the pages of failed deliveries hold %d of the 60", len(seen))
	}

	// The page's URL is the page: reloaded, it shows the same deliveries;
	// Back returns to the newer page.
	b.run("reloading the older page", chromedp.Reload())
	b.waitJS("the older page again", `document.querySelectorAll('#delivery-rows tr').length === 10`)
	if got := ids(); strings.Join(got, " ") != strings.Join(second, " ") {
		t.Errorf("reloaded, the older page shows %v; want %v", got, second)
	}
	if got := b.eval(`location.href`); got != olderURL {
		t.Errorf("reloading moved the page from %s to %s", olderURL, got)
	}
	b.run("going back", chromedp.NavigateBack())
	b.waitJS("the newer page", `!location.hash.includes('cursor=') && document.querySelectorAll('#delivery-rows tr').length === 50`)
	b.run("paging back again", chromedp.Click(css("#deliveries-older")))
	b.waitJS("the second page", `document.querySelectorAll('#delivery-rows tr').length === 10`)

	// The oldest failure, past the log, is retried from its page.
	oldest := strings.TrimSuffix(second[len(second)-1], ":failed")
	b.run("retrying the oldest failure", chromedp.Click(css(`#delivery-rows tr[data-id="`+oldest+`"] button[data-action=retry]`)))
	b.waitJS("its row, succeeded or on its way", `(() => { const r = document.querySelector('#delivery-rows tr[data-id="`+oldest+`"]'); return !!r && r.dataset.status !== 'failed'; })()`)
	waitFor(t, 20*time.Second, "the retried delivery to succeed", func() bool {
		var p page
		h.api.do("GET", hooks+"/"+wid+"/delivery?status=failed&limit=100", nil, &p)
		return len(p.Results) == 59
	})
}

// TestConsoleOutageFigures follows a failing webhook through the
// console: its health figures follow the log as attempts come in, and
// once it is disabled its pending deliveries do not claim a next attempt
// hookd will not make (it fails them as they come due).
func TestConsoleOutageFigures(t *testing.T) {
	b := newBrowser(t, 90*time.Second)
	h := startConsoleHookd(t, map[string]string{"HOOKD_ALLOWED_TARGET_CIDRS": "127.0.0.0/8,::1/128", "HOOKD_RETRY_SCHEDULE": "0s,1h"})
	tg := newTarget(t)
	tg.setAnswer(func(string, int) int { return http.StatusInternalServerError })
	hooks := "/organization/" + h.org.String() + "/webhook"
	wid := h.createWebhook(`{"kind":"STANDARD","target_url":"` + tg.URL + `/down","events":["DEPLOYMENT_FAILURE"]}`)
	test := func() {
		t.Helper()
		if st, _, body := h.api.do("POST", hooks+"/"+wid+"/test", nil, nil); st != 202 {
			t.Fatalf("test: %d %s", st, body)
		}
	}
	test()
	tg.waitCount(t, "/down", 1, 10*time.Second)
	b.run("opening the log", chromedp.Navigate(h.URL+"/#/webhooks/"+wid))
	consoleSignIn(b, h.token, h.org)
	b.waitJS("the first failure, in the log and the figures", `document.querySelectorAll('#log-rows tr').length === 1 &&
		document.querySelector('#stats-24h [data-stat=attempts]')?.textContent === '1'`)
	test()
	b.waitJS("the second failure in the log", `document.querySelectorAll('#log-rows tr').length === 2`)
	b.waitJS("the figures to count it too", `document.querySelector('#stats-24h [data-stat=attempts]').textContent === '2' &&
		document.querySelector('#stats-24h [data-stat=failures]').textContent === '2'`)

	// Disabled (by a person here; hookd does the same after a 410): the
	// two deliveries wait for their 1h retry, which hookd will not send.
	if st, _, body := h.api.do("PUT", hooks+"/"+wid, `{"kind":"STANDARD","target_url":"`+tg.URL+`/down","events":["DEPLOYMENT_FAILURE"],"enabled":false}`, nil); st != 200 {
		t.Fatalf("disable: %d %s", st, body)
	}
	b.run("opening the deliveries", chromedp.Navigate(h.URL+"/#/webhooks/"+wid+"/deliveries?status=pending"))
	b.waitJS("the pending deliveries", `document.querySelectorAll('#delivery-rows tr[data-status=pending]').length === 2`)
	if got := b.eval(`[...document.querySelectorAll('#delivery-rows tr')].map((r) => r.cells[2].innerText.replace(/\s+/g, ' ')).join(' | ')`); strings.Contains(got, "next") || !strings.Contains(got, "disabled") {
		t.Errorf("the pending deliveries of a disabled webhook say %q; want that they are not sent while it is disabled", got)
	}
}

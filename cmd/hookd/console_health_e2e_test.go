package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/webhook"
)

// seedAttempt is one attempt of a known history, made before hookd starts.
type seedAttempt struct {
	ago      time.Duration
	status   int // 0: no answer
	duration time.Duration
}

// seedHistory stores a webhook for each history and its attempts, one
// finished delivery per attempt, oldest first (so the webhook's
// FailingSince is what those attempts make it), straight in the database.
func seedHistory(t *testing.T, dbURL string, org uuid.UUID, now time.Time, hooks map[string][]seedAttempt, order []string, targets map[string]string) map[string]uuid.UUID {
	t.Helper()
	ctx := context.Background()
	d, err := parseDatabaseURL(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	st, err := openStore(ctx, d, noKeys) // stored in clear, as an older hookd did: still read
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	ids := map[string]uuid.UUID{}
	for i, name := range order {
		w := &webhook.Webhook{ID: uuid.Must(uuid.NewV7()), OrganizationID: org, CreatedAt: now.Add(time.Duration(i-100) * time.Hour),
			Kind: webhook.KindStandard, TargetURL: targets[name], Description: name, Enabled: true,
			Events: []webhook.EventType{webhook.EventDeploymentFailure}, ProjectNamesFilter: []string{}, EnvironmentTypesFilter: []webhook.EnvironmentMode{}}
		w.UpdatedAt = w.CreatedAt
		if err := st.WebhookCreate(ctx, w, 0, nil); err != nil {
			t.Fatal(err)
		}
		ids[name] = w.ID
		for _, a := range hooks[name] {
			at := now.Add(-a.ago).Truncate(time.Microsecond)
			ev := &webhook.Event{ID: uuid.Must(uuid.NewV7()), OrganizationID: org, CreatedAt: at, Type: webhook.EventDeploymentFailure,
				ProjectName: "api", EnvironmentMode: webhook.ModeProduction, OnlyWebhookID: w.ID,
				Payload: json.RawMessage(`{"project":{"name":"api"},"environment":{"name":"prod","mode":"PRODUCTION"}}`)}
			if _, err := st.EventsCreate(ctx, []*webhook.Event{ev}, webhook.Lease{}); err != nil {
				t.Fatal(err)
			}
			tasks, err := st.DeliveryClaim(ctx, webhook.ClaimParams{Now: now, LeaseUntil: now.Add(time.Minute), Limit: 10})
			if err != nil || len(tasks) != 1 {
				t.Fatalf("claim: %v, %d tasks", err, len(tasks))
			}
			d := tasks[0].Delivery
			o := webhook.Outcome{Status: webhook.DeliverySucceeded, Lease: d.Lease, Attempt: webhook.Attempt{ID: uuid.Must(uuid.NewV7()), OrganizationID: org,
				WebhookID: w.ID, DeliveryID: d.ID, EventID: d.EventID, CreatedAt: at, Number: 1, Kind: w.Kind, TargetURL: w.TargetURL,
				StatusCode: a.status, Duration: a.duration}}
			if a.status < 200 || a.status > 299 {
				o.Status = webhook.DeliveryFailed
				if a.status == 0 {
					o.Attempt.Error = "connection refused"
				}
			}
			if res, err := st.DeliveryComplete(ctx, []webhook.Outcome{o}); err != nil || len(res.Stale) != 0 {
				t.Fatalf("DeliveryComplete: %v, stale %v", err, res.Stale)
			}
		}
	}
	return ids
}

// TestConsoleHealth checks the console's health at a glance against a
// known history: failing webhooks first with "failing since", a chart
// per webhook whose bars are the API's stats, recovery from a button,
// and a secret's rotation grace.
func TestConsoleHealth(t *testing.T) {
	b := newBrowser(t, 120*time.Second)
	dbURL := "sqlite:" + filepath.Join(t.TempDir(), "hookd.db")
	org := uuid.New()
	tg := newTarget(t)
	now := time.Now()
	// Times sit mid-hour, so the API's hourly buckets (which start a few
	// seconds later than now) put each attempt in a known one.
	ids := seedHistory(t, dbURL, org, now, map[string][]seedAttempt{
		"healthy": {{5*time.Hour + 30*time.Minute, 200, 40 * time.Millisecond}, {90 * time.Minute, 200, 60 * time.Millisecond}},
		"failing": {
			{84 * time.Hour, 200, 70 * time.Millisecond},
			{20*time.Hour + 30*time.Minute, 200, 80 * time.Millisecond},
			{3*time.Hour + 30*time.Minute, 503, 1200 * time.Millisecond},
			{2*time.Hour + 30*time.Minute, 0, 2 * time.Millisecond},
			{30 * time.Minute, 500, 300 * time.Millisecond},
		},
	}, []string{"healthy", "failing"}, map[string]string{"healthy": tg.URL + "/healthy", "failing": tg.URL + "/failing"})

	srv := startServer(t, map[string]string{
		"HOOKD_DATABASE_URL":         dbURL,
		"HOOKD_ALLOWED_TARGET_CIDRS": "127.0.0.0/8,::1/128",
		"HOOKD_RETRY_SCHEDULE":       "0s,1h",
	})
	token := newToken(t, dbURL, org)
	api := call{t: t, base: srv.URL, auth: "Token " + token}
	hooks := "/organization/" + org.String() + "/webhook"

	// A third webhook, whose secret was just rotated.
	var quiet struct {
		ID string `json:"id"`
	}
	if st, _, body := api.do("POST", hooks, `{"kind":"STANDARD","target_url":"`+tg.URL+`/quiet","events":["DEPLOYMENT_STARTED"],"target_secret":"first-secret"}`, &quiet); st != 201 {
		t.Fatalf("create: %d %s", st, body)
	}
	var rotated struct {
		ExpiresAt string `json:"previous_secret_expires_at"`
	}
	if st, _, body := api.do("PUT", hooks+"/"+quiet.ID, `{"kind":"STANDARD","target_url":"`+tg.URL+`/quiet","events":["DEPLOYMENT_STARTED"],"target_secret":"second-secret"}`, &rotated); st != 200 || rotated.ExpiresAt == "" {
		t.Fatalf("rotating the secret: %d %s", st, body)
	}

	type bucket struct {
		Start    string `json:"start"`
		Attempts int    `json:"attempts"`
		Failures int    `json:"failures"`
	}
	type window struct {
		Attempts    int      `json:"attempts"`
		Failures    int      `json:"failures"`
		SuccessRate *float64 `json:"success_rate"`
		Buckets     []bucket `json:"buckets"`
	}
	var stats struct {
		Day  window `json:"last_24_hours"`
		Week window `json:"last_7_days"`
	}
	api.do("GET", hooks+"/"+ids["failing"].String()+"/stats", nil, &stats)
	// The known history, as the API must count it.
	if stats.Day.Attempts != 4 || stats.Day.Failures != 3 || *stats.Day.SuccessRate != 0.25 || len(stats.Day.Buckets) != 24 ||
		stats.Week.Attempts != 5 || stats.Week.Failures != 3 || len(stats.Week.Buckets) != 7 {
		t.Fatalf("stats of the failing webhook: %+v", stats)
	}
	for i, want := range map[int][2]int{3: {1, 0}, 20: {1, 1}, 21: {1, 1}, 23: {1, 1}, 0: {0, 0}, 22: {0, 0}} {
		if got := stats.Day.Buckets[i]; got.Attempts != want[0] || got.Failures != want[1] {
			t.Errorf("hour %d: %d attempts, %d failed; want %v", i, got.Attempts, got.Failures, want)
		}
	}
	var failing struct {
		FailingSince string `json:"failing_since"`
	}
	api.do("GET", hooks+"/"+ids["failing"].String(), nil, &failing)
	if want := now.Add(-3*time.Hour - 30*time.Minute).UTC().Truncate(time.Microsecond).Format(time.RFC3339Nano); failing.FailingSince != want {
		t.Fatalf("failing_since = %q, want %q", failing.FailingSince, want)
	}

	// chartMatches is a JavaScript check that a chart's bars are the
	// buckets: one bar each, its counts and its tooltip.
	chartMatches := func(selector string, buckets []bucket) string {
		js, _ := json.Marshal(buckets)
		return fmt.Sprintf(`(() => {
			const want = %s;
			const bars = [...document.querySelectorAll(%q)];
			if (bars.length !== want.length) return 'bars: ' + bars.length;
			for (let i = 0; i < want.length; i++) {
				const b = bars[i], w = want[i], title = b.querySelector('title').textContent;
				// The page asked a moment after the test: its window may start a little later.
				if (Math.abs(Date.parse(b.dataset.start) - Date.parse(w.start)) > 60000 || +b.dataset.attempts !== w.attempts || +b.dataset.failures !== w.failures) return 'bar ' + i + ': ' + JSON.stringify(b.dataset);
				const text = w.attempts ? w.attempts + ' attempt' + (w.attempts === 1 ? '' : 's') + ', ' + w.failures + ' failed' : 'no attempts';
				if (!title.endsWith(text)) return 'bar ' + i + ' title: ' + title;
				if (!!b.querySelector('.bar-bad') !== (w.failures > 0) || !!b.querySelector('.bar-ok') !== (w.attempts > w.failures)) return 'bar ' + i + ' colours';
			}
			return 'ok';
		})()`, js, selector+" g.bar")
	}

	// The overview: failing first, with since when, and a chart each.
	b.run("opening the console", chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(css("#signin-token")))
	b.run("signing in",
		chromedp.SendKeys(css("#signin-token"), token),
		chromedp.SendKeys(css("#signin-org"), org.String()),
		chromedp.Click(css("#signin-submit")),
		chromedp.WaitVisible(css("#webhook-list li[data-id]")),
	)
	if got, want := b.eval(`[...document.querySelectorAll('#webhook-list li')].map(l => l.dataset.id).join(',')`),
		ids["failing"].String()+","+ids["healthy"].String()+","+quiet.ID; got != want {
		t.Errorf("the list's order is %s, want the failing webhook first: %s", got, want)
	}
	failingRow := `#webhook-list li[data-id="` + ids["failing"].String() + `"]`
	if got := b.eval(`document.querySelector('` + failingRow + ` .failing time').getAttribute('datetime')`); got != failing.FailingSince {
		t.Errorf("the failing webhook's row says failing since %q, want %q", got, failing.FailingSince)
	}
	if got := b.eval(`document.querySelector('#webhook-list li[data-id="` + ids["healthy"].String() + `"] .failing') ? 'failing' : 'healthy'`); got != "healthy" {
		t.Error("the healthy webhook is shown failing")
	}
	b.waitJS("every row's chart", `document.querySelectorAll('#webhook-list svg.chart').length === 3`)
	if got := b.eval(chartMatches(failingRow+" svg.chart", stats.Day.Buckets)); got != "ok" {
		t.Errorf("the failing webhook's row chart: %s", got)
	}
	if got := b.eval(`[...document.querySelectorAll('#webhook-list .wh-rate')].map(e => e.textContent).join(',')`); got != "25%,100%,No traffic" {
		t.Errorf("the rows' success rates read %s", got)
	}
	if got := b.eval(`document.querySelector('.page-head p.muted').textContent`); !strings.Contains(got, "1 failing") {
		t.Errorf("the overview's count reads %q", got)
	}
	b.screenshot("4c-webhooks-health")

	// The webhook's page: figures and both charts match the stats.
	b.run("opening the failing webhook", chromedp.Click(css(failingRow+" a.wh-url")), chromedp.WaitVisible(css("#chart-24h")))
	for _, c := range []struct{ sel, want string }{
		{`#stats-24h [data-stat=success]`, "25%"}, {`#stats-24h [data-stat=attempts]`, "4"}, {`#stats-24h [data-stat=failures]`, "3"},
		{`#stats-7d [data-stat=success]`, "40%"}, {`#stats-7d [data-stat=attempts]`, "5"},
	} {
		if got := b.eval(`document.querySelector('` + c.sel + `').textContent`); got != c.want {
			t.Errorf("%s reads %q, want %q", c.sel, got, c.want)
		}
	}
	if got := b.eval(chartMatches("#chart-24h", stats.Day.Buckets)); got != "ok" {
		t.Errorf("the 24-hour chart: %s", got)
	}
	if got := b.eval(chartMatches("#chart-7d", stats.Week.Buckets)); got != "ok" {
		t.Errorf("the 7-day chart: %s", got)
	}
	b.screenshot("9-webhook-health")

	// The receiver is back: recover the day's failures from the console.
	b.run("recovering",
		chromedp.Click(css("#recover-open")),
		chromedp.WaitVisible(css("#recover-since")),
	)
	b.screenshot("9b-recover-dialog")
	b.run("confirming the recovery", chromedp.Click(css("#recover-submit")), chromedp.WaitNotPresent(css("#recover-since")))
	tg.waitCount(t, "/failing", 3, 15*time.Second)
	var audit struct {
		Results []struct {
			Action string `json:"action"`
		} `json:"results"`
	}
	api.do("GET", "/organization/"+org.String()+"/audit", nil, &audit)
	if len(audit.Results) == 0 || audit.Results[0].Action != "webhook.recovered" {
		t.Errorf("audit after recovering: %+v", audit.Results)
	}
	waitFor(t, 15*time.Second, "the webhook to be healthy again", func() bool {
		var w struct {
			FailingSince *string `json:"failing_since"`
		}
		api.do("GET", hooks+"/"+ids["failing"].String(), nil, &w)
		return w.FailingSince == nil
	})

	// During the secret's rotation grace the page says both signatures
	// are sent, and until when.
	b.run("opening the rotated webhook", chromedp.Navigate(srv.URL+"/#/webhooks/"+quiet.ID), chromedp.WaitVisible(css("#grace-note")))
	if got := b.eval(`document.getElementById('grace-end').getAttribute('datetime')`); got != rotated.ExpiresAt {
		t.Errorf("the grace note ends at %q, want %q", got, rotated.ExpiresAt)
	}
	if got := b.eval(`document.getElementById('grace-note').innerText`); !strings.Contains(got, "two signatures") {
		t.Errorf("the grace note reads %q", got)
	}
	b.screenshot("10-secret-rotation")

	// A delivery sent now carries both signatures, and its page says so.
	if st, _, body := api.do("POST", hooks+"/"+quiet.ID+"/test", nil, nil); st != 202 {
		t.Fatalf("test event: %d %s", st, body)
	}
	if sig := tg.waitCount(t, "/quiet", 1, 15*time.Second)[0].Header.Get("webhook-signature"); len(strings.Fields(sig)) != 2 {
		t.Fatalf("during the grace the target got webhook-signature %q, want two signatures", sig)
	}
	b.run("the attempt's page", chromedp.WaitVisible(css("#log-rows a.row-link")), chromedp.Click(css("#log-rows a.row-link")), chromedp.WaitVisible(css("#request-headers")))
	if got := b.eval(`document.getElementById('request-headers').innerText`); !strings.Contains(got, "webhook-signature\tv1,•••• v1,••••") {
		t.Errorf("the headers shown during the grace:\n%s", got)
	}
	b.run("its edit form", chromedp.Navigate(srv.URL+"/#/webhooks/"+quiet.ID+"/edit"), chromedp.WaitVisible(css("#secret-state")), chromedp.WaitVisible(css("#grace-note")))
}

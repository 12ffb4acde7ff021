package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/store/postgres/pgtest"
)

// TestClientRecovery is an outage and its recovery as an operator lives
// it at a shell: the receiver answers 503, every delivery fails; it comes
// back, `hookd webhook recover` re-queues what failed, once.
func TestClientRecovery(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		// One attempt per delivery: a failure is final at once.
		srv := startServer(t, deliveryEnv(dbURL, map[string]string{"HOOKD_RETRY_SCHEDULE": "0s"}))
		tg := newTarget(t)
		down := tg.outage(http.StatusServiceUnavailable)
		orgID := uuid.New()
		token := newToken(t, dbURL, orgID)
		c := newCLI(t, srv, orgID, token)
		api := call{t: t, base: srv.URL, auth: "Token " + token}
		hooks := "/organization/" + orgID.String() + "/webhook"

		// The secret comes from standard input, never the command line.
		out, errOut, err := c.exec([]byte("whsec_cmVjb3Zlcnktc2VjcmV0LXJlY292ZXJ5LXNlY3JldCE=\n"), "webhook", "create", "--json", "--target-url", tg.URL+"/outage",
			"--events", "DEPLOYMENT_FAILURE", "--secret-file", "-")
		var w struct {
			ID        string `json:"id"`
			SecretSet bool   `json:"target_secret_set"`
		}
		if err != nil || json.Unmarshal([]byte(out), &w) != nil || !w.SecretSet {
			t.Fatalf("create --secret-file -: %v\n%s%s", err, out, errOut)
		}

		// The outage: three events, three failed deliveries.
		for i := range 3 {
			c.run("emit", "--event-type", "DEPLOYMENT_FAILURE", "--project", "api", "--environment", "prod", "--mode", "PRODUCTION",
				"--deployment-id", "dep-"+string(rune('a'+i)))
		}
		got := tg.waitCount(t, "/outage", 3, 30*time.Second)
		if s := got[0].Header.Get("Qovery-Secret"); s != "whsec_cmVjb3Zlcnktc2VjcmV0LXJlY292ZXJ5LXNlY3JldCE=" {
			t.Fatalf("the target got Qovery-Secret %q, want the secret of the file without its newline", s)
		}
		failedRow := regexp.MustCompile(`(?m)^[0-9a-f-]{36}\s+\S+Z\s+DEPLOYMENT_FAILURE\s+failed\s+1\s+503\s+-$`)
		waitFor(t, 30*time.Second, "three failed deliveries", func() bool {
			return len(failedRow.FindAllString(c.run("delivery", "list", w.ID, "--status", "failed"), -1)) == 3
		})
		_, _, apiPage := api.do("GET", hooks+"/"+w.ID+"/delivery?status=failed&limit=2", nil, nil)
		out, errOut, err = c.exec(nil, "delivery", "list", w.ID, "--status", "failed", "--limit", "2", "--json")
		if err != nil || !strings.Contains(errOut, "") {
			t.Fatal(err)
		}
		jsonEqual(t, "delivery list --json", []byte(out), apiPage)
		if _, errOut, _ := c.exec(nil, "delivery", "list", w.ID, "--limit", "2"); !strings.Contains(errOut, "--cursor ") {
			t.Errorf("a full page does not say how to get the next: %q", errOut)
		}

		// The list says since when it fails, as the API does.
		var failing struct {
			FailingSince string `json:"failing_since"`
		}
		api.do("GET", hooks+"/"+w.ID, nil, &failing)
		since, _ := time.Parse(time.RFC3339Nano, failing.FailingSince)
		if out := c.run("webhook", "list"); !regexp.MustCompile(`(?m)^` + w.ID + `\s+STANDARD\s+yes\s+` + since.UTC().Format(time.RFC3339) + `\s`).MatchString(out) {
			t.Fatalf("list while failing (since %s):\n%s", failing.FailingSince, out)
		}
		if out := c.run("webhook", "get", w.ID); !strings.Contains(out, "Failing since:") {
			t.Fatalf("get while failing:\n%s", out)
		}

		// Health: three attempts in the last day, all failed.
		out = c.run("webhook", "stats", w.ID)
		if !regexp.MustCompile(`(?m)^24h\s+3\s+3\s+0\.0%\s+\S+\s+\S+\s+\.{23}x$`).MatchString(out) ||
			!regexp.MustCompile(`(?m)^7d\s+3\s+3\s+0\.0%\s+\S+\s+\S+\s+\.{6}x$`).MatchString(out) {
			t.Fatalf("stats table:\n%s", out)
		}
		_, _, apiStats := api.do("GET", hooks+"/"+w.ID+"/stats", nil, nil)
		var cliStats, want map[string]any
		json.Unmarshal([]byte(c.run("webhook", "stats", w.ID, "--json")), &cliStats)
		json.Unmarshal(apiStats, &want)
		if cliStats["last_7_days"].(map[string]any)["attempts"] != want["last_7_days"].(map[string]any)["attempts"] {
			t.Fatalf("stats --json %v, API %v", cliStats, want)
		}
		if st, _, _ := api.do("POST", hooks+"/"+w.ID+"/recover", `{"since":"`+time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)+`","status":"failed"}`, nil); st != 400 {
			t.Fatalf("a bad status filter: %d, want 400", st)
		}

		// The receiver is back: recover the 5xx of the last hour, once.
		down.Store(false)
		out = c.run("webhook", "recover", w.ID, "--since", "1h", "--status", "5xx")
		if !regexp.MustCompile(`(?m)^3\s+3\s+0\s+\S+Z\s+\S+Z$`).MatchString(out) {
			t.Fatalf("recover table:\n%s", out)
		}
		tg.waitCount(t, "/outage", 6, 30*time.Second)
		succeeded := regexp.MustCompile(`(?m)^[0-9a-f-]{36}\s+\S+Z\s+DEPLOYMENT_FAILURE\s+succeeded\s+2\s+200\s+-$`)
		waitFor(t, 30*time.Second, "the recovered deliveries to succeed", func() bool {
			return len(succeeded.FindAllString(c.run("delivery", "list", w.ID), -1)) == 3
		})
		var again struct{ Deliveries int }
		if err := json.Unmarshal([]byte(c.run("webhook", "recover", w.ID, "--since", "1h", "--json")), &again); err != nil || again.Deliveries != 0 {
			t.Fatalf("recovering again: %v %+v, want nothing re-queued", err, again)
		}
		var audit struct {
			Results []struct {
				Action  string `json:"action"`
				Changes []struct {
					Field string          `json:"field"`
					After json.RawMessage `json:"after"`
				} `json:"changes"`
			} `json:"results"`
		}
		api.do("GET", "/organization/"+orgID.String()+"/audit", nil, &audit)
		if len(audit.Results) < 2 || audit.Results[0].Action != "webhook.recovered" || audit.Results[1].Action != "webhook.recovered" {
			t.Fatalf("audit trail: %+v", audit.Results)
		}
		if last := audit.Results[1].Changes; string(last[len(last)-1].After) != "3" {
			t.Fatalf("the first recovery's entry: %+v", last)
		}
		// hookd audit shows the same, newest first.
		out = c.run("audit", "--limit", "2")
		if !regexp.MustCompile(`(?m)^\S+Z\s+token:\S+\s+webhook.recovered\s+\S+/outage\s+since=\S+, until=\S+, deliveries=0\n\S+Z\s+token:\S+\s+webhook.recovered\s+\S+/outage\s+since=\S+, until=\S+, status=5xx, deliveries=3$`).MatchString(out) {
			t.Fatalf("audit table:\n%s", out)
		}
		_, _, apiAudit := api.do("GET", "/organization/"+orgID.String()+"/audit?limit=2", nil, nil)
		jsonEqual(t, "audit --json", []byte(c.run("audit", "--limit", "2", "--json")), apiAudit)

		// A test event, then a retry of one delivery.
		out = c.run("webhook", "test", w.ID)
		m := regexp.MustCompile(`(?m)^([0-9a-f-]{36})\s+([0-9a-f-]{36})$`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("test table:\n%s", out)
		}
		tg.waitCount(t, "/outage", 7, 30*time.Second)
		waitFor(t, 30*time.Second, "the test delivery to finish", func() bool {
			return strings.Contains(c.run("delivery", "list", w.ID, "--status", "succeeded"), m[2])
		})
		out = c.run("delivery", "retry", w.ID, m[2])
		if !regexp.MustCompile(`(?m)^` + m[2] + `\s+pending\s+1\s+\S+Z$`).MatchString(out) {
			t.Fatalf("retry table:\n%s", out)
		}
		tg.waitCount(t, "/outage", 8, 30*time.Second)
	})
}

// TestRecoverPending is a short outage on the default kind of schedule:
// each delivery failed once and waits for a retry an hour away. Once the
// receiver is back, `hookd webhook recover --pending` makes them due now,
// and they are delivered within seconds, each once more and no more; one
// in flight during a second recovery (a retry the receiver holds open),
// which it would otherwise take, is not sent again.
func TestRecoverPending(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		// A retry an hour after the first failure.
		srv := startServer(t, deliveryEnv(dbURL, map[string]string{"HOOKD_RETRY_SCHEDULE": "0s,1h,1s"}))
		var (
			mu      sync.Mutex
			got     = map[string]int{} // requests per deployment id
			down    atomic.Bool
			release = make(chan struct{})
		)
		down.Store(true)
		dep := regexp.MustCompile(`dep-[a-z0-9]+`)
		url := newTargetFunc(t, func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			id := dep.FindString(string(body))
			mu.Lock()
			got[id]++
			mu.Unlock()
			switch {
			case down.Load():
				w.WriteHeader(http.StatusServiceUnavailable)
			case id == "dep-inflight":
				// Its retry, made due by the recovery, is held open.
				select {
				case <-release:
				case <-r.Context().Done():
				}
			}
		})
		t.Cleanup(func() {
			select {
			case <-release:
			default:
				close(release)
			}
		})
		count := func(id string) int {
			mu.Lock()
			defer mu.Unlock()
			return got[id]
		}
		orgID := uuid.New()
		token := newToken(t, dbURL, orgID)
		c := newCLI(t, srv, orgID, token)
		api := call{t: t, base: srv.URL, auth: "Token " + token}
		var w struct{ ID string }
		if err := json.Unmarshal([]byte(c.run("webhook", "create", "--json", "--target-url", url+"/pending", "--events", "DEPLOYMENT_FAILURE")), &w); err != nil {
			t.Fatal(err)
		}
		emit := func(id string) {
			c.run("emit", "--event-type", "DEPLOYMENT_FAILURE", "--project", "api", "--environment", "prod", "--mode", "PRODUCTION", "--deployment-id", id)
		}
		ids := []string{"dep-a", "dep-b", "dep-c", "dep-d"}
		for _, id := range ids {
			emit(id)
		}
		emit("dep-inflight")
		waitFor(t, 30*time.Second, "every delivery's first attempt", func() bool {
			for _, id := range append(ids, "dep-inflight") {
				if count(id) != 1 {
					return false
				}
			}
			return true
		})
		type delivery struct {
			Status        string     `json:"status"`
			Attempts      int        `json:"attempts"`
			NextAttemptAt *time.Time `json:"next_attempt_at"`
		}
		list := func() (pending, running, succeeded []delivery) {
			var page struct{ Results []delivery }
			api.do("GET", "/organization/"+orgID.String()+"/webhook/"+w.ID+"/delivery?limit=100", nil, &page)
			for _, d := range page.Results {
				switch d.Status {
				case "pending":
					pending = append(pending, d)
				case "running":
					running = append(running, d)
				case "succeeded":
					succeeded = append(succeeded, d)
				}
			}
			return
		}
		waitFor(t, 30*time.Second, "five deliveries waiting for a retry", func() bool {
			pending, _, _ := list()
			return len(pending) == 5
		})
		pending, _, _ := list()
		for _, d := range pending {
			if d.Attempts != 1 || d.NextAttemptAt == nil || time.Until(*d.NextAttemptAt) < 30*time.Minute {
				t.Fatalf("a delivery waiting for its retry: %+v, want 1 attempt and the next in about an hour", d)
			}
		}

		// The receiver is back: make the waiting ones due now.
		down.Store(false)
		start := time.Now()
		out := c.run("webhook", "recover", w.ID, "--since", "1h", "--status", "5xx", "--pending")
		if !regexp.MustCompile(`(?m)^5\s+0\s+5\s+\S+Z\s+\S+Z$`).MatchString(out) {
			t.Fatalf("recover --pending table:\n%s", out)
		}
		waitFor(t, 10*time.Second, "the recovered deliveries to succeed, and one to be held open", func() bool {
			_, running, succeeded := list()
			return len(succeeded) == 4 && len(running) == 1 && count("dep-inflight") == 2
		})
		t.Logf("delivered %v after the recovery", time.Since(start).Round(time.Millisecond))
		_, _, succeeded := list()
		for _, d := range succeeded {
			if d.Attempts != 2 {
				t.Fatalf("a recovered delivery: %+v, want its 2 attempts: it kept its count", d)
			}
		}
		// Recovering again: the one in flight (attempted, its last answer
		// a 503) is running, not pending, and is left alone.
		var again struct{ Deliveries, Failed, Pending int }
		if err := json.Unmarshal([]byte(c.run("webhook", "recover", w.ID, "--since", "1h", "--status", "5xx", "--pending", "--json")), &again); err != nil || again.Deliveries != 0 {
			t.Fatalf("recovering again: %v %+v, want nothing re-queued", err, again)
		}

		// The request held open ends; its delivery was sent once more than
		// the first time, not a third time by the second recovery.
		close(release)
		waitFor(t, 30*time.Second, "every delivery to succeed", func() bool {
			_, _, succeeded := list()
			return len(succeeded) == 5
		})
		for _, id := range append(ids, "dep-inflight") {
			if n := count(id); n != 2 {
				t.Errorf("%s was sent %d times, want 2: one failed, one after the recovery", id, n)
			}
		}
		out = c.run("audit", "--limit", "2")
		if !regexp.MustCompile(`(?m)^\S+Z\s+token:\S+\s+webhook.recovered\s+\S+/pending\s+since=\S+, until=\S+, status=5xx, deliveries=0, failed=0, pending=0\n` +
			`\S+Z\s+token:\S+\s+webhook.recovered\s+\S+/pending\s+since=\S+, until=\S+, status=5xx, deliveries=5, failed=0, pending=5$`).MatchString(out) {
			t.Fatalf("audit table:\n%s", out)
		}
	})
}

// TestCompletion completes command lines in a real bash (and zsh, when
// installed) with the scripts hookd prints.
func TestCompletion(t *testing.T) {
	_, err := exec.LookPath("zsh")
	switch {
	case err != nil && os.Getenv("CI") == "true":
		t.Fatalf("the completion test needs zsh (apt-get install -y zsh): %v", err)
	case err != nil:
		t.Log("no zsh (apt-get install -y zsh): checking the bash script alone")
	}
	haveZsh := err == nil
	for _, tc := range []struct {
		words string // the command line; the last word is being completed
		want  string // the candidates, space-separated
	}{
		{"hookd ", "serve migrate token webhook delivery source audit emit bench version completion"},
		{"hookd webhook re", "recover"},
		{"hookd delivery ", "list retry"},
		{"hookd webhook recover 0190a6d2 --s", "--since --status"},
		{"hookd webhook recover 0190a6d2 --since 2h --u", "--until --url"},
		{"hookd webhook create --secret", "--secret-file"},
		{"hookd completion ", "bash zsh"},
		{"hookd source create --sec", "--secret-file"},
		{"hookd token list --", "--organization"},
		{"hookd token revoke --", ""},
	} {
		words := strings.Split(tc.words, " ")
		script := `source <("$HOOKD" completion bash); COMP_WORDS=(` + quoteWords(words) + `); COMP_CWORD=` + itoa(len(words)-1) +
			`; _hookd; echo "${COMPREPLY[*]}"`
		cmd := exec.Command("bash", "--norc", "-c", script)
		cmd.Env = environ(map[string]string{"HOOKD": hookdBin})
		out, err := cmd.CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != tc.want {
			t.Errorf("bash: %q completes to %q (%v), want %q", tc.words, out, err, tc.want)
		}
		if !haveZsh {
			continue
		}
		// Outside a completion widget compadd and _files are stand-ins
		// that print what they are given; compadd filters nothing, so
		// keep the candidates that start with the word.
		script = `compadd() { shift; print -l -- "$@" }; _files() { print FILES }; source <("$HOOKD" completion zsh); words=(` +
			quoteWords(words) + `); CURRENT=` + itoa(len(words)) + `; PREFIX=` + quoteWords(words[len(words)-1:]) + `; _hookd`
		cmd = exec.Command("zsh", "-f", "-c", script)
		cmd.Env = environ(map[string]string{"HOOKD": hookdBin})
		out, err = cmd.CombinedOutput()
		var got []string
		for _, w := range strings.Fields(string(out)) {
			if strings.HasPrefix(w, words[len(words)-1]) {
				got = append(got, w)
			}
		}
		if err != nil || strings.Join(got, " ") != tc.want {
			t.Errorf("zsh: %q completes to %q (%v), want %q", tc.words, out, err, tc.want)
		}
	}
}

func quoteWords(ws []string) string {
	q := make([]string, len(ws))
	for i, w := range ws {
		q[i] = "'" + w + "'"
	}
	return strings.Join(q, " ")
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestRecoverTwoNodes recovers the same outage from two nodes of one
// PostgreSQL database at once: each failed delivery is re-queued by one
// of them and sent once more, not twice.
func TestRecoverTwoNodes(t *testing.T) {
	dbURL := pgtest.URL(t)
	env := deliveryEnv(dbURL, map[string]string{"HOOKD_RETRY_SCHEDULE": "0s"})
	nodes := []*server{startServer(t, env), startServer(t, env)}
	tg := newTarget(t)
	down := tg.outage(http.StatusBadGateway)
	orgID := uuid.New()
	token := newToken(t, dbURL, orgID)
	apis := []call{{t: t, base: nodes[0].URL, auth: "Token " + token}, {t: t, base: nodes[1].URL, auth: "Token " + token}}
	base := "/organization/" + orgID.String()
	var w struct{ ID string }
	if st, _, body := apis[0].do("POST", base+"/webhook", `{"kind":"STANDARD","target_url":"`+tg.URL+`/two","events":["DEPLOYMENT_FAILURE"]}`, &w); st != 201 {
		t.Fatalf("create: %d %s", st, body)
	}
	const events = 20
	since := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	for i := range events {
		if st, _, body := apis[i%2].do("POST", base+"/deployment-event", `{"event_type":"DEPLOYMENT_FAILURE","project":{"name":"api"},"environment":{"name":"prod","mode":"PRODUCTION"}}`, nil); st != 202 {
			t.Fatalf("event: %d %s", st, body)
		}
	}
	countStatus := func(status string) int {
		var page struct{ Results []struct{ Attempts int } }
		apis[0].do("GET", base+"/webhook/"+w.ID+"/delivery?limit=100&status="+status, nil, &page)
		return len(page.Results)
	}
	waitFor(t, 30*time.Second, "every delivery to fail", func() bool { return countStatus("failed") == events })

	down.Store(false)
	counts := make(chan int, len(apis))
	for _, a := range apis {
		go func() {
			var r struct{ Deliveries int }
			st, _, body, err := a.doQuiet("POST", base+"/webhook/"+w.ID+"/recover", `{"since":"`+since+`"}`, &r)
			if err != nil || st != 202 {
				t.Errorf("recover on %s: %d %s %v", a.base, st, body, err)
			}
			counts <- r.Deliveries
		}()
	}
	total := <-counts + <-counts
	if total != events {
		t.Fatalf("two nodes recovering at once re-queued %d deliveries, want %d", total, events)
	}
	waitFor(t, 30*time.Second, "every recovered delivery to succeed", func() bool { return countStatus("succeeded") == events })
	if got := len(tg.got("/two")); got != 2*events {
		t.Fatalf("the target got %d requests, want %d: one failed and one recovered per event", got, 2*events)
	}
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/store/postgres"
	"github.com/hookd/hookd/internal/store/postgres/pgtest"
	"github.com/hookd/hookd/internal/webhook"
)

// runningApp is an app built by newApp and run in the test's process.
type runningApp struct {
	*app
	URL    string
	logs   *syncBuffer
	cancel context.CancelFunc
	done   chan error
}

// startApp builds an app from env (on top of the defaults, listening on a
// free loopback port) with the clock now, runs it, and waits until /readyz
// answers 200. It is stopped when the test ends, if not before.
func startApp(t *testing.T, env map[string]string, now func() time.Time) *runningApp {
	t.Helper()
	full := serverEnv(env)
	c, err := loadConfig(func(k string) string { return full[k] })
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	a, err := newApp(context.Background(), c, newLogger(c, logs), now)
	if err != nil {
		t.Fatalf("newApp: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &runningApp{app: a, URL: "http://" + a.listener.Addr().String(), logs: logs, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- a.run(ctx) }()
	t.Cleanup(func() {
		r.stop(t)
		if t.Failed() {
			t.Logf("app logs:\n%s", logs.String())
		}
	})
	waitReady(t, r.URL)
	return r
}

// stop ends run and returns its error, failing t if it does not return
// within the stop's bound.
func (r *runningApp) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err // for a second stop
		return err
	case <-time.After(hookdStop + 5*time.Second):
		t.Fatalf("run did not return %v after its context ended", hookdStop+5*time.Second)
		return nil
	}
}

// newAppOrg makes an organization with an API token on a's database,
// through `hookd token create` run in-process.
func newAppOrg(t *testing.T, a *runningApp, dbURL string) *org {
	t.Helper()
	id := uuid.New()
	var out, errOut bytes.Buffer
	env := []string{"HOOKD_DATABASE_URL=" + dbURL}
	if err := run(context.Background(), []string{"token", "create", "--organization", id.String(), "--name", "app"}, env, &out, &errOut); err != nil {
		t.Fatalf("token create: %v\n%s", err, errOut.String())
	}
	return &org{t: t, id: id, api: call{t: t, base: a.URL, auth: "Token " + strings.TrimSpace(out.String())}}
}

// postEvents reports n events to o and returns their ids.
func postEvents(t *testing.T, o *org, n int) []string {
	t.Helper()
	var ids []string
	for range n {
		var a accepted
		if st, _, body := o.api.do("POST", o.path("/deployment-event"), deploymentEvent("DEPLOYMENT_STARTED", "app", "PRODUCTION"), &a); st != 202 {
			t.Fatalf("deployment event: %d %s", st, body)
		}
		ids = append(ids, a.ID)
	}
	return ids
}

// storedDeliveries reads a webhook's deliveries (10,000 at most) from the
// database of an app that has stopped.
func storedDeliveries(t *testing.T, dbURL string, org, hook uuid.UUID) []*webhook.Delivery {
	t.Helper()
	d, _ := parseDatabaseURL(dbURL)
	db, err := openStore(context.Background(), d, noKeys)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	all, err := db.DeliveryList(context.Background(), webhook.DeliveryListParams{OrganizationID: org, WebhookID: hook, Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	return all
}

// waitGoroutines waits until no more goroutines run than before, and
// fails t listing those that remain.
func waitGoroutines(t *testing.T, before int) {
	t.Helper()
	http.DefaultClient.CloseIdleConnections() // the test's own connections
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			var stacks bytes.Buffer
			pprof.Lookup("goroutine").WriteTo(&stacks, 1)
			t.Fatalf("%d goroutines run after the app stopped, %d before it started:\n%s", runtime.NumGoroutine(), before, stacks.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestServeAppStopsEverything runs the whole app (API, intake, the
// dispatcher delivering to a real target, retention, pprof) on a
// temporary SQLite database, stops it, and checks run returned with no
// goroutine of it left and the database closed.
// TestServeWarnsOfJWKSWithoutAudience: without an audience, hookd takes
// a token its identity provider issued for any application; it says so.
func TestServeWarnsOfJWKSWithoutAudience(t *testing.T) {
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"keys":[]}`))
	}))
	t.Cleanup(jwks.Close)
	for _, audience := range []string{"", "hookd"} {
		a := startApp(t, map[string]string{
			"HOOKD_DATABASE_URL": "sqlite:" + filepath.Join(t.TempDir(), "hookd.db"),
			"HOOKD_JWT_JWKS_URL": jwks.URL,
			"HOOKD_JWT_AUDIENCE": audience,
		}, time.Now)
		if warned := strings.Contains(a.logs.String(), "without HOOKD_JWT_AUDIENCE"); warned != (audience == "") {
			t.Errorf("audience %q: warned %v; logs:\n%s", audience, warned, a.logs.String())
		}
		a.stop(t)
	}
}

func TestServeAppStopsEverything(t *testing.T) {
	tg := newTarget(t)
	before := runtime.NumGoroutine()
	dbURL := "sqlite:" + filepath.Join(t.TempDir(), "hookd.db")
	a := startApp(t, deliveryEnv(dbURL, map[string]string{"HOOKD_PPROF_ADDR": "127.0.0.1:0"}), time.Now)
	if resp, err := http.Get("http://" + a.pprofLn.Addr().String() + "/debug/pprof/cmdline"); err != nil {
		t.Fatalf("pprof: %v", err)
	} else {
		resp.Body.Close()
	}
	o := newAppOrg(t, a, dbURL)
	o.createWebhook(map[string]any{"kind": "STANDARD", "target_url": tg.URL + "/app", "events": []string{"DEPLOYMENT_STARTED"}})
	postEvents(t, o, 20)
	tg.waitCount(t, "/app", 20, 30*time.Second)

	if err := a.stop(t); err != nil {
		t.Fatalf("run: %v", err)
	}
	waitGoroutines(t, before)
	// Closed: the store refuses what it served a moment ago.
	if _, err := a.db.WebhookList(context.Background(), o.id); err == nil {
		t.Error("the database still answers after run returned")
	}
	if logs := a.logs.String(); !strings.Contains(logs, "hookd stopped") {
		t.Errorf("no \"hookd stopped\" in the logs:\n%s", logs)
	}
}

// A graceful stop leaves nothing leased (docs/engine.md): the requests in
// flight finish and are recorded, the deliveries queued behind them are
// given back, due now, so the next node to run sends them at once.
func TestServeAppShutdownReleasesLeases(t *testing.T) {
	tg := newTarget(t)
	tg.delay = 300 * time.Millisecond
	dbURL := "sqlite:" + filepath.Join(t.TempDir(), "hookd.db")
	a := startApp(t, deliveryEnv(dbURL, map[string]string{"HOOKD_MAX_INFLIGHT_PER_WEBHOOK": "1"}), time.Now)
	o := newAppOrg(t, a, dbURL)
	hook := uuid.MustParse(o.createWebhook(map[string]any{"kind": "STANDARD", "target_url": tg.URL + "/slow", "events": []string{"DEPLOYMENT_STARTED"}}))
	postEvents(t, o, 10)
	tg.waitCount(t, "/slow", 1, 30*time.Second) // one in flight, the others queued
	stopped := time.Now()
	if err := a.stop(t); err != nil {
		t.Fatalf("run: %v", err)
	}
	if took := time.Since(stopped); took > 5*time.Second {
		t.Errorf("the stop took %v with one 300 ms request in flight", took)
	}

	all := storedDeliveries(t, dbURL, o.id, hook)
	counts := map[webhook.DeliveryStatus]int{}
	for _, dl := range all {
		counts[dl.Status]++
		if dl.Status == webhook.DeliveryPending && dl.DueAt.After(time.Now()) {
			t.Errorf("delivery %s given back due at %v, not now", dl.ID, dl.DueAt)
		}
	}
	if len(all) != 10 || counts[webhook.DeliveryRunning] != 0 || counts[webhook.DeliverySucceeded] != len(tg.got("/slow")) {
		t.Errorf("after the stop: %v of %d deliveries, %d sent; want none running and every sent one succeeded", counts, len(all), len(tg.got("/slow")))
	}
	if counts[webhook.DeliveryPending] == 0 {
		t.Errorf("every delivery was sent before the stop (%v): the test proves nothing", counts)
	}
}

// Events keep coming while the app stops: every one answered 202 was
// committed, with its delivery, before run returned.
func TestServeAppShutdownKeepsAcceptedEvents(t *testing.T) {
	tg := newTarget(t)
	tg.delay = 100 * time.Millisecond
	dbURL := "sqlite:" + filepath.Join(t.TempDir(), "hookd.db")
	a := startApp(t, deliveryEnv(dbURL, map[string]string{"HOOKD_INTAKE_RATE": "0"}), time.Now)
	o := newAppOrg(t, a, dbURL)
	hook := uuid.MustParse(o.createWebhook(map[string]any{"kind": "STANDARD", "target_url": tg.URL + "/stop", "events": []string{"DEPLOYMENT_STARTED"}}))
	stop := make(chan struct{})
	var n atomic.Int64
	done := pour(t, o, func() []string { return []string{a.URL} }, 0, stop, &n)
	waitFor(t, 30*time.Second, "100 accepted events", func() bool { return n.Load() >= 100 })
	if err := a.stop(t); err != nil {
		t.Fatalf("run: %v", err)
	}
	close(stop)
	ids := done()

	stored := map[string]bool{}
	all := storedDeliveries(t, dbURL, o.id, hook)
	for _, dl := range all {
		stored[dl.EventID.String()] = true
		if dl.Status == webhook.DeliveryRunning {
			t.Errorf("delivery %s left running", dl.ID)
		}
	}
	for id := range ids {
		if !stored[id] {
			t.Errorf("event %s was answered 202 but is not stored", id)
		}
	}
	t.Logf("%d events accepted, %d deliveries stored", len(ids), len(all))
}

// newApp reports what is wrong before anything runs, naming the variable,
// and leaves nothing open behind it.
func TestServeNewAppErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	cases := map[string]map[string]string{
		"HOOKD_ADDR":       {"HOOKD_ADDR": busy.Addr().String()},
		"HOOKD_PPROF_ADDR": {"HOOKD_PPROF_ADDR": busy.Addr().String()},
		"HOOKD_JWT_":       {"HOOKD_JWT_HS256_SECRET": "short"},
	}
	for want, env := range cases {
		t.Run(want, func(t *testing.T) {
			before := runtime.NumGoroutine()
			full := map[string]string{"HOOKD_ADDR": "127.0.0.1:0", "HOOKD_DATABASE_URL": "sqlite:" + filepath.Join(t.TempDir(), "hookd.db")}
			for k, v := range env {
				full[k] = v
			}
			c, err := loadConfig(func(k string) string { return full[k] })
			if err != nil {
				t.Fatal(err)
			}
			a, err := newApp(context.Background(), c, slog.New(slog.DiscardHandler), time.Now)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("newApp: %v, %v; want an error naming %s", a, err, want)
			}
			waitGoroutines(t, before)
		})
	}
}

// An API server that fails stops the app like a signal does, and run
// returns its error instead of hanging.
func TestServeAppServerFailure(t *testing.T) {
	c, err := loadConfig(func(k string) string {
		return map[string]string{"HOOKD_ADDR": "127.0.0.1:0", "HOOKD_DATABASE_URL": "sqlite:" + filepath.Join(t.TempDir(), "hookd.db")}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	a, err := newApp(context.Background(), c, slog.New(slog.DiscardHandler), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	a.listener.Close()
	done := make(chan error, 1)
	go func() { done <- a.run(context.Background()) }()
	select {
	case err := <-done:
		if err == nil || errors.Is(err, http.ErrServerClosed) {
			t.Errorf("run: %v, want the listener's error", err)
		}
	case <-time.After(hookdStop + 5*time.Second):
		t.Fatal("run did not return after its server failed")
	}
}

// retention's pass removes what is older than HOOKD_RETENTION by its
// clock, and nothing younger.
func TestRetentionRunOnce(t *testing.T) {
	ctx := context.Background()
	d, _ := parseDatabaseURL("sqlite:" + filepath.Join(t.TempDir(), "hookd.db"))
	db, err := openStore(ctx, d, noKeys)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	created := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	org := uuid.New()
	for i := range 3 {
		ev := webhook.NewEvent(org, &webhook.DeploymentEvent{EventType: "DEPLOYMENT_STARTED",
			Project: webhook.DeploymentProject{Name: "p"}, Environment: webhook.DeploymentEnvironment{Name: "e", Mode: webhook.ModeProduction}},
			uuid.Must(uuid.NewV7()), created.Add(time.Duration(i)*time.Hour), "")
		if _, err := db.EventsCreate(ctx, []*webhook.Event{ev}, webhook.Lease{}); err != nil {
			t.Fatal(err)
		}
	}
	var now atomic.Value
	r := &retention{store: db, keep: 24 * time.Hour, every: time.Hour, now: func() time.Time { return now.Load().(time.Time) }, log: slog.New(slog.DiscardHandler)}
	for _, c := range []struct {
		now  time.Time
		want int
	}{
		{created.Add(24 * time.Hour), 0},             // the oldest is exactly 24 h old: kept
		{created.Add(25*time.Hour + time.Second), 2}, // the first two are older
		{created.Add(25*time.Hour + time.Second), 0}, // gone already
		{created.Add(1000 * time.Hour), 1},           // the last
	} {
		now.Store(c.now)
		if n, err := r.runOnce(ctx); err != nil || n != c.want {
			t.Errorf("at %v: removed %d, %v; want %d", c.now, n, err, c.want)
		}
	}
}

// HOOKD_ROLE=api takes events and queues their deliveries but sends none:
// a node that delivers sends them.
func TestServeAppRoleAPI(t *testing.T) {
	tg := newTarget(t)
	dbURL := "sqlite:" + filepath.Join(t.TempDir(), "hookd.db")
	api := startApp(t, deliveryEnv(dbURL, map[string]string{"HOOKD_ROLE": "api"}), time.Now)
	o := newAppOrg(t, api, dbURL)
	o.createWebhook(map[string]any{"kind": "STANDARD", "target_url": tg.URL + "/role", "events": []string{"DEPLOYMENT_STARTED"}})
	postEvents(t, o, 5)
	// A graceful stop finishes every request in flight: what the node
	// sent, the target has.
	if err := api.stop(t); err != nil {
		t.Fatal(err)
	}
	if got := len(tg.got("/role")); got != 0 {
		t.Fatalf("a node with HOOKD_ROLE=api sent %d deliveries", got)
	}
	if !strings.Contains(api.logs.String(), "HOOKD_ROLE=api on SQLite: this server delivers nothing") {
		t.Errorf("no warning that a SQLite server with HOOKD_ROLE=api delivers nothing; logs:\n%s", api.logs.String())
	}
	startApp(t, deliveryEnv(dbURL, nil), time.Now)
	tg.waitCount(t, "/role", 5, 30*time.Second)
}

func TestConfigRole(t *testing.T) {
	for s, want := range map[string]role{"all": roleAll, "api": roleAPI} {
		r, err := parseRole(s)
		if err != nil || r != want || r.String() != s {
			t.Errorf("%q: %v (%s), %v", s, r, r, err)
		}
	}
	if !roleAll.delivers() || roleAPI.delivers() {
		t.Error("only the role all delivers")
	}
	for _, s := range []string{"", "ALL", "worker"} {
		if _, err := parseRole(s); err == nil {
			t.Errorf("%q: no error", s)
		}
	}
}

func TestConfigDatabaseURL(t *testing.T) {
	for _, c := range []struct {
		url  string
		want database
		err  string
	}{
		{"sqlite:hookd.db", database{Backend: backendSQLite, Path: "hookd.db", URL: "sqlite:hookd.db"}, ""},
		{"sqlite:/data/a:b.db", database{Backend: backendSQLite, Path: "/data/a:b.db", URL: "sqlite:/data/a:b.db"}, ""},
		{"postgres://u:p@h/db", database{Backend: backendPostgres, URL: "postgres://u:p@h/db"}, ""},
		{"postgresql://h/db", database{Backend: backendPostgres, URL: "postgresql://h/db"}, ""},
		{"sqlite:", database{}, "needs a file path"},
		{"mysql://h/db", database{}, "must start with"},
		{"host=h dbname=db", database{}, "must start with"},
	} {
		d, err := parseDatabaseURL(c.url)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: %v, want an error saying %q", c.url, err, c.err)
			}
			continue
		}
		if err != nil || d != c.want {
			t.Errorf("%q: %+v, %v; want %+v", c.url, d, err, c.want)
		}
	}
}

// The listener wakes the dispatcher on a notification and passes on a
// deleted webhook's id, listens again after a failure, and returns when
// its context ends, even mid-pause.
func TestServeNodeListener(t *testing.T) {
	db := pgtest.Migrated(t, postgres.Open, noKeys)
	woken := make(chan struct{}, 1)
	wake := func() {
		select {
		case woken <- struct{}{}:
		default:
		}
	}
	forgotten := make(chan uuid.UUID, 1)
	ctx, cancel := context.WithCancel(context.Background())
	l := &nodeListener{db: db, wake: wake, forget: func(id uuid.UUID) { forgotten <- id }, retry: time.Hour, log: slog.New(slog.DiscardHandler)}
	done := make(chan struct{})
	go func() {
		l.run(ctx)
		close(done)
	}()
	// LISTEN may not be in place yet: notify until a wake arrives.
	waitFor(t, 10*time.Second, "a wake after NOTIFY", func() bool {
		if _, err := db.Pool().Exec(context.Background(), "SELECT pg_notify('hookd_due', '')"); err != nil {
			t.Fatal(err)
		}
		select {
		case <-woken:
			return true
		case <-time.After(50 * time.Millisecond):
			return false
		}
	})
	deleted := uuid.New()
	if _, err := db.Pool().Exec(context.Background(), "SELECT pg_notify('hookd_forget', $1)", deleted.String()); err != nil {
		t.Fatal(err)
	}
	select {
	case id := <-forgotten:
		if id != deleted {
			t.Fatalf("forgot %v, want %v", id, deleted)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no forget after NOTIFY hookd_forget")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("run did not return after its context ended")
	}

	// A listen that fails is logged and tried again after the pause;
	// the pause ends with the context.
	db.ListenOn("postgres://nobody@127.0.0.1:1/none")
	logs := &syncBuffer{}
	l.log = slog.New(slog.NewTextHandler(logs, nil))
	ctx, cancel = context.WithCancel(context.Background())
	done = make(chan struct{})
	go func() {
		l.run(ctx)
		close(done)
	}()
	waitFor(t, 10*time.Second, "the failure logged", func() bool {
		return strings.Contains(logs.String(), "listening for other nodes' deliveries and deletes failed")
	})
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("run did not return during its pause")
	}
}

// The levels the SDK's global logger uses (global.Warn is V(1), Info
// V(4), Debug V(8)) land in hookd's log at Warn, Debug and below, also
// through a logger the SDK derived with WithValues.
func TestOTelLevels(t *testing.T) {
	var buf bytes.Buffer
	l := logr.FromSlogHandler(otelLevels{slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})})
	l.V(1).Info("warn")
	l.WithValues("k", "v").V(1).Info("warn with values")
	l.V(4).Info("info")
	l.V(8).Info("debug")
	l.Error(errors.New("boom"), "error")
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		_, rest, _ := strings.Cut(line, " ") // the time
		got = append(got, rest)
	}
	want := []string{
		"level=WARN msg=warn",
		"level=WARN msg=\"warn with values\" k=v",
		"level=DEBUG msg=info",
		"level=ERROR msg=error err=boom",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("logged\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// With tracing on, the OpenTelemetry SDK's own diagnostics (here an
// OTEL_ variable it cannot parse, an error, and a protocol OTLP/HTTP does
// not speak, a warning) are lines of hookd's log, in its format, not
// plain text on stderr beside it; at hookd's default level its warnings
// are shown, its information is not.
func TestServeAppOTelDiagnosticsInItsLog(t *testing.T) {
	// The SDK reads its variables from the process's environment.
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
	t.Setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "soon")
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
	dbURL := "sqlite:" + filepath.Join(t.TempDir(), "hookd.db")
	a := startApp(t, deliveryEnv(dbURL, map[string]string{
		"HOOKD_LOG_FORMAT":            "json",
		"HOOKD_LOG_LEVEL":             "info", // hookd's default; the harness logs debug
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1",
	}), time.Now)
	var parse, protocol string
	for _, line := range strings.Split(a.logs.String(), "\n") {
		var entry struct{ Level, Msg, Input string }
		if json.Unmarshal([]byte(line), &entry) != nil {
			continue
		}
		switch entry.Msg {
		case "parse duration":
			parse = line
			if entry.Level != "ERROR" || entry.Input != "soon" {
				t.Errorf("the SDK's error logged as %s", line)
			}
		case "grpc is not a valid protocol for OTLP/HTTP, defaulting to http/protobuf":
			protocol = line
			if entry.Level != "WARN" {
				t.Errorf("the SDK's warning logged as %s", line)
			}
		case "TracerProvider created": // the SDK's Info, below hookd's
			t.Errorf("the SDK's information logged at level info: %s", line)
		}
	}
	if parse == "" {
		t.Errorf("no JSON line of hookd's log says the SDK could not parse OTEL_EXPORTER_OTLP_TIMEOUT; logs:\n%s", a.logs.String())
	}
	if protocol == "" {
		t.Errorf("no JSON line of hookd's log has the SDK's warning about OTEL_EXPORTER_OTLP_PROTOCOL=grpc; logs:\n%s", a.logs.String())
	}
}

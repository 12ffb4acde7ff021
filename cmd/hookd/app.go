package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"

	"github.com/hookd/hookd/internal/api"
	"github.com/hookd/hookd/internal/auth"
	"github.com/hookd/hookd/internal/console"
	"github.com/hookd/hookd/internal/delivery"
	"github.com/hookd/hookd/internal/intake"
	"github.com/hookd/hookd/internal/store/postgres"
	"github.com/hookd/hookd/internal/store/sqlite"
	"github.com/hookd/hookd/internal/tracing"
	"github.com/hookd/hookd/internal/webhook"
)

// shutdownTimeout is how long a graceful stop lets in-flight API requests
// and in-flight deliveries finish, side by side. A claim or an intake
// commit under way may hold the stop longer (see run).
const shutdownTimeout = 10 * time.Second

// traceFlushTimeout bounds sending the last spans once everything else
// has stopped (a collector that is down must not hold the stop up).
const traceFlushTimeout = 5 * time.Second

// The HTTP server's bounds besides HOOKD_READ_TIMEOUT.
const (
	readHeaderTimeout = 5 * time.Second
	handlerTimeout    = 30 * time.Second
	idleTimeout       = 120 * time.Second
	maxHeaderBytes    = 64 << 10
)

// app is one `hookd serve`: newApp builds every part and binds the
// listeners, run starts them and, when its context ends, stops them in
// the order it writes out once.
type app struct {
	cfg *config
	log *slog.Logger

	db          store
	stopTracing func(context.Context) error
	client      *http.Client // the dispatcher's, to targets

	// base is the context of what newApp must start before run does (the
	// JWKS refresh of auth.New); it ends once the API has stopped.
	base     context.Context
	stopBase context.CancelFunc

	// dispatcher is built whatever the role (its metrics include the
	// queue's backlog) but runs only when the role delivers.
	dispatcher *delivery.Dispatcher
	committer  *intake.Committer
	retention  *retention
	notices    *nodeListener // PostgreSQL nodes that deliver; nil otherwise

	server   *http.Server
	listener net.Listener
	pprof    *http.Server // nil when HOOKD_PPROF_ADDR is empty
	pprofLn  net.Listener
	// handlers counts the HTTP handlers running, so that run closes the
	// store only after the last one returned.
	handlers sync.WaitGroup
}

// newApp builds everything `hookd serve` runs from c: it opens, migrates
// and checks the database and binds the listeners, so that what is wrong
// with the configuration or the host is an error here, before anything
// runs. now is the node's clock (time.Now; tests give a skewed one).
// What newApp opened is closed by run, or by newApp itself if it fails.
func newApp(ctx context.Context, c *config, log *slog.Logger, now func() time.Time) (*app, error) {
	a := &app{cfg: c, log: log}
	a.base, a.stopBase = context.WithCancel(context.Background())
	if err := a.build(ctx, now); err != nil {
		a.closeBuilt()
		return nil, err
	}
	return a, nil
}

// build is newApp's work; what it opened before failing, closeBuilt closes.
func (a *app) build(ctx context.Context, now func() time.Time) error {
	c, log := a.cfg, a.log
	if c.OTLPTracesURL != "" {
		// The SDK's own diagnostics (an OTEL_ variable it could not parse,
		// say) go to its global logger, plain text on stderr by default:
		// through hookd's they keep its format and level, its warnings
		// lifted to Warn (otelLevels).
		otel.SetLogger(logr.FromSlogHandler(otelLevels{log.Handler()}))
	}
	tracer, stopTracing, err := tracing.Setup(ctx, c.OTLPTracesURL, version)
	if err != nil {
		return fmt.Errorf("setting up tracing: %w", err)
	}
	a.stopTracing = stopTracing
	if c.OTLPTracesURL != "" {
		// The SDK reports export failures through this global alone.
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { log.Warn("exporting traces failed", "err", err) }))
		log.Info("tracing on", "otlp_endpoint", webhook.RedactedURL(c.OTLPTracesURL))
	}

	db, err := openServeStore(ctx, c, log, now)
	if err != nil {
		return err
	}
	a.db = db

	authn, err := auth.New(a.base, auth.Config{
		HS256Secret:        c.JWTSecret,
		JWKSURL:            c.JWKSURL,
		JWKSRefresh:        c.JWKSRefresh,
		Issuer:             c.JWTIssuer,
		Audience:           c.JWTAudience,
		OrganizationsClaim: c.JWTOrganizationsClaim,
	}, db, now, log)
	if err != nil {
		return fmt.Errorf("HOOKD_JWT_*: %w", err)
	}
	if c.JWKSURL != "" && c.JWTAudience == "" {
		// An identity provider signs tokens for all its applications with
		// the same keys; only the audience says a token was meant for hookd.
		log.Warn("HOOKD_JWT_JWKS_URL is set without HOOKD_JWT_AUDIENCE: hookd accepts a JWT this identity provider issued for any of its applications, if it has the organizations claim")
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a.client = delivery.NewHTTPClient(delivery.ClientOptions{Timeout: c.DeliveryTimeout, AllowedCIDRs: c.AllowedTargetCIDRs, NAT64Prefixes: nat64Prefixes(ctx, c, log)})
	a.dispatcher = delivery.New(delivery.Config{
		Store:                 db,
		Client:                a.client,
		Schedule:              c.RetrySchedule,
		Timeout:               c.DeliveryTimeout,
		MaxInflightPerWebhook: c.MaxInflightPerWebhook,
		DisableAfter:          c.DisableAfter,
		SecretRotationGrace:   c.SecretRotationGrace,
		StopGrace:             shutdownTimeout,
		UserAgent:             "hookd/" + version,
		Now:                   now,
		Log:                   log,
		Registry:              reg,
		Tracer:                tracer,
	})
	// The deliveries made here are sent here, and the API wakes the
	// dispatcher and tells it of deleted webhooks, when this node sends.
	var (
		sender     intake.Sender
		dispatcher api.Dispatcher
	)
	if !c.Role.delivers() && c.Database.Backend == backendSQLite {
		// A SQLite file has one server (LockServer): while this one holds
		// it, no server that delivers can open it.
		log.Warn("HOOKD_ROLE=api on SQLite: this server delivers nothing, and no other can serve its database while it runs; the events it takes wait for a server with HOOKD_ROLE=all", "database", c.Database.Path)
	}
	if c.Role.delivers() {
		sender, dispatcher = a.dispatcher, a.dispatcher
		if pg, ok := db.(*postgres.DB); ok {
			if c.DatabaseListenURL != "" {
				pg.ListenOn(c.DatabaseListenURL)
			}
			a.notices = &nodeListener{db: pg, wake: a.dispatcher.Wake, forget: a.dispatcher.Forget, edited: a.dispatcher.Edited, retry: 5 * time.Second, log: log}
		}
	}
	a.committer = intake.New(intake.Config{Store: db, Sender: sender, Workers: c.Database.intakeWorkers(), MaxBatch: 256, Tracer: tracer})
	a.retention = &retention{store: db, keep: c.Retention, every: time.Hour, now: now, log: log}

	handler := api.NewServer(api.Deps{
		Store:      db,
		Auth:       authn,
		Intake:     a.committer,
		Dispatcher: dispatcher,
		Log:        log,
		Now:        now,
		Registry:   reg,
		// A series that cannot be collected (the backlog, read from the
		// database) is left out, not the whole scrape: while the database
		// is unreachable, intake_unavailable must still reach Prometheus.
		Metrics: promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg, EnableOpenMetrics: true,
			ErrorHandling: promhttp.ContinueOnError, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}),
		Extra:  console.Routes(version),
		Tracer: tracer,
		Limits: api.Limits{
			APIRate:           c.APIRate,
			APIBurst:          c.APIBurst,
			AuthFailureRate:   c.AuthFailureRate,
			AuthFailureBurst:  c.AuthFailureBurst,
			IntakeRate:        c.IntakeRate,
			IntakeBurst:       c.IntakeBurst,
			MaxWebhooksPerOrg: c.MaxWebhooksPerOrg,
			MaxSourcesPerOrg:  c.MaxSourcesPerOrg,
		},
		SecretRotationGrace: c.SecretRotationGrace,
		Alive:               liveness(db),
	})
	// Bound before run, so a port in use is an error of newApp and tests
	// can ask for :0.
	if a.listener, err = net.Listen("tcp", c.Addr); err != nil {
		return fmt.Errorf("HOOKD_ADDR: %w", err)
	}
	// Slow clients are cut off: a connection that trickles its headers
	// is closed after readHeaderTimeout, one that trickles its body after
	// ReadTimeout, an idle keep-alive one after idleTimeout.
	a.server = &http.Server{
		Handler:           a.counted(handler),
		ReadHeaderTimeout: min(readHeaderTimeout, c.ReadTimeout),
		ReadTimeout:       c.ReadTimeout,
		// WriteTimeout runs from the end of the headers: the body, the
		// handler (an intake commit included) and the answer must fit.
		WriteTimeout:   c.ReadTimeout + handlerTimeout,
		IdleTimeout:    idleTimeout,
		MaxHeaderBytes: maxHeaderBytes,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if c.PprofAddr != "" {
		if a.pprofLn, err = net.Listen("tcp", c.PprofAddr); err != nil {
			return fmt.Errorf("HOOKD_PPROF_ADDR: %w", err)
		}
		a.pprof = &http.Server{Handler: a.counted(pprofRoutes()), ReadHeaderTimeout: readHeaderTimeout}
	}
	return nil
}

// openServeStore opens, migrates and checks the database. Webhook and
// source secrets are sealed by the backend as it writes their rows and
// opened as it reads them, with the keys read here. A SQLite file is
// served by one process: this one waits for the one before it to stop,
// then gives back what that one left leased.
func openServeStore(ctx context.Context, c *config, log *slog.Logger, now func() time.Time) (store, error) {
	var lock *sqlite.ServerLock
	if c.Database.Backend == backendSQLite {
		var err error
		lock, err = sqlite.LockServer(ctx, c.Database.Path, func(holder string) {
			log.Warn("another hookd serves this database; waiting for it to stop", "database", c.Database.Path, "holder", holder)
		})
		switch {
		case errors.Is(err, sqlite.ErrNoServerLock):
			// Served as before the lock: leases left by a crash end in
			// their time, and nothing stops a second server.
			log.Warn("the database's file system takes no locks: make sure one hookd alone serves it", "database", c.Database.Path, "err", err)
		case err != nil:
			return nil, err
		}
	}
	keys, err := encryptionKeys(c, log)
	if err != nil {
		lock.Close()
		return nil, err
	}
	db, err := openStore(ctx, c.Database, keys)
	if err != nil {
		lock.Close()
		return nil, err
	}
	lite, _ := db.(*sqlite.DB)
	if lock != nil {
		lite.HoldServerLock(lock)
	}
	db.ReportPurgeErrors(func(err error) {
		log.Error("purging a deleted webhook's deliveries failed; trying again in a minute", "err", err)
	})
	if err := db.Migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrating the database: %w", err)
	}
	// A database that cannot be written would answer every event with an
	// error: refuse to start instead, saying why.
	if err := db.Ping(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("the database cannot be written, so hookd cannot accept events: %w "+
			"(check that the database file and its directory are writable by this user and the disk has space, "+
			"or that the PostgreSQL server is a primary)", err)
	}
	if lock != nil {
		// Sent again now rather than once their leases end, up to
		// Timeout + 20 s after the crash that left them.
		n, err := lite.ReleaseLeases(ctx, now())
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("giving back the deliveries the last server left leased: %w", err)
		}
		if n > 0 {
			log.Info("gave back the deliveries the last server left leased: they are sent again now", "count", n)
		}
	}
	return db, nil
}

// liveness is what /healthz asks: whether a part hookd owns has had work
// waiting without progress for so long that only a restart will help.
// On SQLite that is the one writer, every write (intake, the
// dispatcher's claims and outcomes) waiting behind it. On PostgreSQL
// nothing: its writes wait on the database server, and restarting every
// node because it is down would cure nothing.
func liveness(db store) func() error {
	lite, ok := db.(*sqlite.DB)
	if !ok {
		return nil
	}
	return func() error {
		// The real clock, as the writer's: not the node's (tests skew it).
		if d := lite.WriterStuckFor(time.Now()); d > sqlite.StuckLimit {
			return fmt.Errorf("the SQLite writer has been on one transaction for %v (the limit is %v), and every write waits behind it",
				d.Round(time.Second), sqlite.StuckLimit)
		}
		return nil
	}
}

// counted wraps h so that run can wait for its handlers.
func (a *app) counted(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.handlers.Add(1)
		defer a.handlers.Done()
		h.ServeHTTP(w, r)
	})
}

// closeBuilt releases what newApp made when it fails part way.
func (a *app) closeBuilt() {
	a.stopBase()
	if a.listener != nil {
		a.listener.Close()
	}
	if a.pprofLn != nil {
		a.pprofLn.Close()
	}
	if a.db != nil {
		a.db.Close()
	}
	if a.stopTracing != nil {
		a.stopTracing(context.Background())
	}
}

// run serves until ctx ends, then stops in the order written below and
// returns once every goroutine it started has returned and the database
// is closed. An API server that fails is stopped the same way, and its
// error returned.
func (a *app) run(ctx context.Context) error {
	// The dispatcher and the loops end at step 1 of the stop, intake at
	// step 3: not with ctx, which ends before the API has finished.
	loops, stopLoops := context.WithCancel(context.Background())
	defer stopLoops()
	intakeCtx, stopIntake := context.WithCancel(context.Background())
	defer stopIntake()

	var dispatching, looping sync.WaitGroup
	if a.cfg.Role.delivers() {
		dispatching.Go(func() { a.dispatcher.Run(loops) })
	}
	committed := make(chan struct{})
	go func() {
		a.committer.Run(intakeCtx)
		close(committed)
	}()
	looping.Go(func() { a.retention.run(loops) })
	if a.notices != nil {
		looping.Go(func() { a.notices.run(loops) })
	}
	served := make(chan error, 2)
	var serving sync.WaitGroup
	serving.Go(func() { served <- a.server.Serve(a.listener) })
	if a.pprof != nil {
		serving.Go(func() {
			if err := a.pprof.Serve(a.pprofLn); !errors.Is(err, http.ErrServerClosed) {
				a.log.Error("pprof server failed", "err", err)
			}
		})
		a.log.Info("pprof serving", "addr", a.pprofLn.Addr().String())
	}
	a.log.Info("hookd serving", "addr", a.listener.Addr().String(), "version", version, "database", a.cfg.Database.Backend)

	var err error
	select {
	case err = <-served:
		a.log.Error("the API server failed; stopping", "err", err)
	case <-ctx.Done():
		a.log.Info("hookd stopping: finishing in-flight requests and deliveries")
	}

	// The stop, in order. Steps 1 and 2 run side by side, so that it takes
	// the longest of shutdownTimeout, a claim under way and intake's last
	// commits, plus traceFlushTimeout for step 7, while the database
	// answers (hookdStop in deploy_test.go adds it up; past the claim,
	// the waits on a database that answers nothing add up instead).
	//
	// 1. The dispatcher stops claiming: it gives back (due now) what it
	//    queued and what a claim under way took, and its requests in
	//    flight get StopGrace (shutdownTimeout), from now, to finish and
	//    be recorded. Retention and the PostgreSQL listener stop:
	//    neither holds a promise.
	stopLoops()
	// 2. The API stops accepting connections and finishes its requests in
	//    flight (an intake request waits for its commit); those still
	//    running at the deadline are cut off, which cancels them.
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if serr := a.server.Shutdown(shutdownCtx); serr != nil {
		a.log.Warn("some API requests did not finish in time; closing their connections", "err", serr)
		a.server.Close()
	}
	if a.pprof != nil {
		a.pprof.Close()
	}
	serving.Wait()
	a.stopBase() // the JWKS refresh, which requests in flight may have needed
	// 3. Intake drains: every event already queued is committed and its
	//    request answered. The dispatcher no longer takes leases, so their
	//    deliveries are queued, due now, for whichever node delivers next.
	stopIntake()
	<-committed
	// 4. The dispatcher finishes: its requests done or cancelled at the
	//    grace, their outcomes recorded, the rest given back.
	dispatching.Wait()
	// 5. The loops and the HTTP handlers have returned: nothing but the
	//    store's own background work (its purger, which Close stops)
	//    uses the database any more.
	looping.Wait()
	a.handlers.Wait()
	// 6. The database is closed, and the connections to targets.
	a.db.Close()
	a.client.CloseIdleConnections()
	// 7. The last spans are sent.
	flushCtx, cancelFlush := context.WithTimeout(context.Background(), traceFlushTimeout)
	defer cancelFlush()
	if ferr := a.stopTracing(flushCtx); ferr != nil {
		a.log.Warn("sending the last traces failed", "err", ferr)
	}
	a.log.Info("hookd stopped")
	return err
}

func pprofRoutes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// nat64Prefixes are the network's own NAT64 prefixes the delivery client
// checks: those HOOKD_NAT64_PREFIXES names, or those DNS64 answers at
// start (auto).
// A resolver that does not answer within 2 s leaves none, and says so:
// start does not wait on it longer.
func nat64Prefixes(ctx context.Context, c *config, log *slog.Logger) []netip.Prefix {
	if !c.DiscoverNAT64 {
		return c.NAT64Prefixes
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	found, err := delivery.DiscoverNAT64(ctx, net.DefaultResolver.LookupNetIP)
	switch {
	case err != nil:
		log.Warn("no NAT64 prefix discovered; behind NAT64 with a prefix of the network's own, set HOOKD_NAT64_PREFIXES", "err", err)
	case len(found) > 0:
		log.Info("NAT64 prefixes discovered: targets in them are refused when the IPv4 address they carry is non-public", "prefixes", found)
	}
	return found
}

// otelLevels is the slog handler under the SDK's global logger. The SDK
// logs a warning at logr's V(1), which logr writes as slog level -1:
// below Info, so hookd's default level dropped every warning (a span's
// attributes cut at the limit, an OTEL_ protocol it cannot speak) and
// showed only errors. otelLevels lifts that level to Warn; the SDK's
// Info (V(4), slog's Debug) and Debug (V(8)) stay below Info.
type otelLevels struct{ slog.Handler }

// otelWarn is the slog level of the SDK's global.Warn.
const otelWarn = slog.Level(-1)

func otelLevel(l slog.Level) slog.Level {
	if l == otelWarn {
		return slog.LevelWarn
	}
	return l
}

func (h otelLevels) Enabled(ctx context.Context, l slog.Level) bool {
	return h.Handler.Enabled(ctx, otelLevel(l))
}

func (h otelLevels) Handle(ctx context.Context, r slog.Record) error {
	r.Level = otelLevel(r.Level)
	return h.Handler.Handle(ctx, r)
}

// WithAttrs and WithGroup keep the mapping on the handlers the SDK
// derives (logr's WithValues calls WithAttrs).
func (h otelLevels) WithAttrs(as []slog.Attr) slog.Handler {
	return otelLevels{h.Handler.WithAttrs(as)}
}

func (h otelLevels) WithGroup(name string) slog.Handler {
	return otelLevels{h.Handler.WithGroup(name)}
}

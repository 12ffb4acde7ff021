package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"

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
	"github.com/hookd/hookd/internal/tracing"
	"github.com/hookd/hookd/internal/webhook"
)

// shutdownTimeout bounds a graceful stop: in-flight API requests first,
// then in-flight deliveries (each bounded by the delivery timeout).
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

func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", "serve", stderr, true)
	addr := fs.String("addr", "", "listen address (overrides HOOKD_ADDR)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	if *addr != "" {
		c.Addr = *addr
	}
	log := newLogger(c, stderr)
	tracer, stopTracing, err := tracing.Setup(ctx, c.OTLPTracesURL, version)
	if err != nil {
		return fmt.Errorf("setting up tracing: %w", err)
	}
	if c.OTLPTracesURL != "" {
		// The SDK reports export failures through this global alone.
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { log.Warn("exporting traces failed", "err", err) }))
		log.Info("tracing on", "otlp_endpoint", webhook.RedactedURL(c.OTLPTracesURL))
	}
	defer func() {
		flushCtx, cancel := context.WithTimeout(context.Background(), traceFlushTimeout)
		defer cancel()
		stopTracing(flushCtx)
	}()

	// Webhook and source secrets are sealed by the backend as it writes
	// their rows and opened as it reads them.
	keys, err := encryptionKeys(c, log)
	if err != nil {
		return err
	}
	db, err := openStore(ctx, c.DatabaseURL, keys)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		return fmt.Errorf("migrating the database: %w", err)
	}
	// A database that cannot be written would answer every event with an
	// error: refuse to start instead, saying why.
	if err := db.Ping(ctx); err != nil {
		return fmt.Errorf("the database cannot be written, so hookd cannot accept events: %w "+
			"(check that the database file and its directory are writable by this user and the disk has space, "+
			"or that the PostgreSQL server is a primary)", err)
	}

	// Background work lives until serve returns, not until the signal:
	// the dispatcher must outlive the API server's shutdown.
	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBG()

	authn, err := auth.New(bg, auth.Config{
		HS256Secret:        c.JWTSecret,
		JWKSURL:            c.JWKSURL,
		JWKSRefresh:        c.JWKSRefresh,
		Issuer:             c.JWTIssuer,
		Audience:           c.JWTAudience,
		OrganizationsClaim: c.JWTOrganizationsClaim,
	}, db, time.Now, log)
	if err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	client := delivery.NewHTTPClient(delivery.ClientOptions{Timeout: c.DeliveryTimeout, AllowedCIDRs: c.AllowedTargetCIDRs})
	// For tests only, and not documented: the dispatcher's clock runs this
	// far off, to show a node's skewed clock cannot break the queue.
	now := time.Now
	if skew, err := time.ParseDuration(getenv("HOOKD_TEST_CLOCK_SKEW")); err == nil {
		now = func() time.Time { return time.Now().Add(skew) }
	}
	dispatcher := delivery.New(delivery.Config{
		Store:                 db,
		Client:                client,
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
	// Intake outlives the API server's shutdown: requests in flight wait
	// for their commit.
	intakeCtx, stopIntake := context.WithCancel(context.WithoutCancel(ctx))
	defer stopIntake()
	var sender intake.Sender // the deliveries made here are sent here when this node sends
	if c.Role == "all" {
		sender = dispatcher
	}
	committer := intake.New(intake.Config{Store: db, Sender: sender, Workers: intakeWorkers(c.DatabaseURL), MaxBatch: 256, Tracer: tracer})
	committed := make(chan struct{})
	go func() {
		committer.Run(intakeCtx)
		close(committed)
	}()
	handler := api.NewServer(api.Deps{
		Store:    db,
		Auth:     authn,
		Intake:   committer,
		Wake:     dispatcher.Wake,
		Log:      log,
		Registry: reg,
		Metrics:  promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg, EnableOpenMetrics: true}),
		Extra:    console.Routes(version),
		Tracer:   tracer,
		Limits: api.Limits{
			APIRate:           c.APIRate,
			APIBurst:          c.APIBurst,
			AuthFailureRate:   c.AuthFailureRate,
			AuthFailureBurst:  c.AuthFailureBurst,
			IntakeRate:        c.IntakeRate,
			IntakeBurst:       c.IntakeBurst,
			MaxWebhooksPerOrg: c.MaxWebhooksPerOrg,
		},
		SecretRotationGrace: c.SecretRotationGrace,
	})

	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return err
	}
	// Slow clients are cut off: a connection that trickles its headers
	// is closed after readHeaderTimeout, one that trickles its body after
	// ReadTimeout, an idle keep-alive one after idleTimeout.
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: min(readHeaderTimeout, c.ReadTimeout),
		ReadTimeout:       c.ReadTimeout,
		// WriteTimeout runs from the end of the headers: the body, the
		// handler (an intake commit included) and the answer must fit.
		WriteTimeout:   c.ReadTimeout + handlerTimeout,
		IdleTimeout:    idleTimeout,
		MaxHeaderBytes: maxHeaderBytes,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}

	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		if c.Role == "all" {
			dispatcher.Run(bg)
		}
	}()
	if pg, ok := db.(*postgres.DB); ok && c.Role == "all" {
		if c.DatabaseListenURL != "" {
			pg.ListenOn(c.DatabaseListenURL)
		}
		wg.Go(func() { listenDue(bg, pg, dispatcher.Wake, log) })
	}
	go func() {
		defer wg.Done()
		retain(bg, db, c.Retention, log)
	}()
	if c.PprofAddr != "" {
		go servePprof(bg, c.PprofAddr, log)
	}

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("hookd serving", "addr", ln.Addr().String(), "version", version, "database", databaseKind(c.DatabaseURL))

	select {
	case err := <-serveErr:
		stopBG()
		stopIntake()
		wg.Wait()
		<-committed
		return err
	case <-ctx.Done():
	}
	log.Info("hookd stopping: finishing in-flight requests and deliveries")
	// The dispatcher stops claiming at once and its requests in flight get
	// a grace period, while the API finishes its own requests.
	stopBG()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.Warn("some API requests did not finish in time", "err", err)
	}
	stopIntake()
	<-committed
	wg.Wait()
	log.Info("hookd stopped")
	return nil
}

// listenDue wakes the dispatcher when another node queues deliveries
// (PostgreSQL's LISTEN/NOTIFY), listening again after a failure; polling
// covers the gaps.
func listenDue(ctx context.Context, db *postgres.DB, wake func(), log *slog.Logger) {
	for ctx.Err() == nil {
		if err := db.ListenDue(ctx, wake); err != nil {
			log.Warn("listening for other nodes' deliveries failed; polling meanwhile", "err", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Second):
		}
	}
}

// retain removes old events, deliveries and attempts, hourly.
func retain(ctx context.Context, db webhook.Store, keep time.Duration, log *slog.Logger) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		n, err := db.DeleteBefore(ctx, time.Now().Add(-keep))
		switch {
		case err != nil && ctx.Err() == nil:
			log.Error("retention cleanup failed", "err", err)
		case n > 0:
			log.Info("retention cleanup", "events_removed", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func servePprof(ctx context.Context, addr string, log *slog.Logger) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	log.Info("pprof serving", "addr", addr)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("pprof server failed", "err", err)
	}
}

// intakeWorkers is how many intake transactions run at once: SQLite has
// one writer, so more would only queue; PostgreSQL commits in parallel.
func intakeWorkers(url string) int {
	if databaseKind(url) == "sqlite" {
		return 1
	}
	return 4
}

func databaseKind(url string) string {
	if len(url) >= 7 && url[:7] == "sqlite:" {
		return "sqlite"
	}
	return "postgres"
}

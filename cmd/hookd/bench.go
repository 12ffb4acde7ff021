package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hookd/hookd/internal/bench"
)

const benchSynopsis = `bench [flags]

Measures hookd on this machine: starts a local target, starts this hookd
binary (a fresh database per scenario) or uses a running one (--url), runs
the scenarios and prints a table; --out also writes it as JSON.

Scenarios: raw (the machine's ceiling: a Go client straight to the target),
burst, steady, fanout, slow-target, backlog, retry.

Databases: temporary SQLite files by default (--database-url sqlite:DIR puts
them in DIR). With --database-url postgres://USER@HOST/DB, DB is only used to
CREATE DATABASE hookd_bench_<random> for each scenario (dropped after), so the
user needs the CREATEDB privilege.

Nodes: --nodes N starts N hookd processes per scenario on the same
PostgreSQL database, as several hookd behind a load balancer would run;
intake requests go to them in turn. Peak RSS and CPU are their sums.

Instructions: --callgrind DIR runs each hookd under valgrind's callgrind and
reports the instructions it executed per delivery, a count that does not move
with the machine's load; DIR gets the profiles (callgrind.*.out.1 and so on;
read them with callgrind_annotate). hookd then runs with GOMAXPROCS=1,
asyncpreemptoff=1,cpu.rdtscp=off added to GODEBUG and, unless exported,
HOOKD_MAX_INFLIGHT_PER_WEBHOOK=64; backlog and slow-target are skipped.
Valgrind is some fifty times slower: the defaults are far too large, use
small loads (say --scenarios burst,steady --events 3000 --rate 20
--duration 15s); rates and latencies are then valgrind's.

Exported HOOKD_* variables reach the hookd processes, except those the bench
sets (HOOKD_ADDR, HOOKD_DATABASE_URL, HOOKD_LOG_LEVEL=warn,
HOOKD_ALLOWED_TARGET_CIDRS=127.0.0.0/8,::1/128, and per scenario HOOKD_ROLE,
HOOKD_RETRY_SCHEDULE). Unless exported, HOOKD_API_RATE, HOOKD_INTAKE_RATE and
HOOKD_MAX_WEBHOOKS_PER_ORG are 0 (no limit: the bench measures throughput),
and on PostgreSQL HOOKD_ENCRYPTION_KEY is a random key made for the run.
With --url, that hookd must allow loopback targets (HOOKD_ALLOWED_TARGET_CIDRS)
and be on this machine; backlog and retry are skipped. Never point --url at a
hookd in production.

Intake's refusals: each event carries an Idempotency-Key; one answered 503
(hookd saturated) or 429 (a limit) is sent again after its Retry-After, at
most 5 requests per event, and the notes say how many were (JSON: retried).
An event still refused, or whose request failed, counts as rejected.
`

func runBench(ctx context.Context, args []string, environ []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench", benchSynopsis, stderr, false)
	var (
		scenarios   = fs.String("scenarios", strings.Join(bench.Scenarios, ","), "comma-separated scenarios to run")
		events      = fs.Int("events", 20000, "burst and raw: events sent (fanout sends a twentieth of it)")
		concurrency = fs.Int("concurrency", 32, "concurrent clients of closed-loop scenarios")
		rate        = fs.Float64("rate", 1000, "steady, slow-target, retry: events per second")
		duration    = fs.Duration("duration", 30*time.Second, "steady and slow-target: how long to send (retry: at most 10s)")
		fanout      = fs.Int("fanout", 100, "fanout: webhooks each event matches")
		backlog     = fs.Int("backlog", 200000, "backlog: deliveries queued while delivery is off")
		wait        = fs.Duration("wait", time.Minute, "count deliveries as lost after this long without a new one")
		quick       = fs.Bool("quick", false, "a smoke test: scale the defaults down (2,000 events, 200/s for 5s, backlog 20,000)")
		dbURL       = fs.String("database-url", "", "sqlite:DIR (default: the temporary directory) or postgres://... (a server to create databases on)")
		nodes       = fs.Int("nodes", 1, "hookd processes per scenario, sharing its database (more than one: PostgreSQL only)")
		hookdURL    = fs.String("url", "", "use the hookd running at this URL instead of starting one")
		token       = fs.String("token", "", "with --url: an API token (or JWT) of --organization")
		org         = fs.String("organization", "", "with --url: the organization UUID to create webhooks and send events in")
		out         = fs.String("out", "", "also write the report as JSON to this file")
		pprofAddr   = fs.String("pprof", "", "serve pprof from each hookd started on this address (HOOKD_PPROF_ADDR; with --nodes, the first node's)")
		callgrind   = fs.String("callgrind", "", "run each hookd under valgrind's callgrind, writing its profiles in this directory, and report the instructions it executed per delivery (GOMAXPROCS=1; some fifty times slower: use small loads)")
	)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{"bench takes no arguments, only flags"}
	}
	if *quick {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		scale := func(name string, apply func()) {
			if !set[name] {
				apply()
			}
		}
		scale("events", func() { *events = 2000 })
		scale("rate", func() { *rate = 200 })
		scale("duration", func() { *duration = 5 * time.Second })
		scale("backlog", func() { *backlog = 20000 })
		scale("wait", func() { *wait = 20 * time.Second })
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding hookd's own executable: %w", err)
	}
	cfg := bench.Config{
		Executable:   exe,
		Environ:      environ,
		Version:      versionString(),
		Scenarios:    splitList(*scenarios),
		Events:       *events,
		Concurrency:  *concurrency,
		Rate:         *rate,
		Duration:     *duration,
		Fanout:       *fanout,
		Backlog:      *backlog,
		Nodes:        *nodes,
		Wait:         *wait,
		URL:          *hookdURL,
		Token:        *token,
		Organization: *org,
		PprofAddr:    *pprofAddr,
		Progress:     stderr,
	}
	if *rate <= 0 || *events < 1 || *concurrency < 1 || *fanout < 1 || *backlog < 1 || *duration <= 0 || *nodes < 1 {
		return usageError{"bench: --events, --concurrency, --rate, --duration, --fanout, --backlog and --nodes must be positive"}
	}
	if *callgrind != "" {
		if *hookdURL != "" {
			return usageError{"bench: --callgrind runs the hookd processes the bench starts; with --url it starts none"}
		}
		for _, tool := range []string{"valgrind", "vgdb"} {
			if _, err := exec.LookPath(tool); err != nil {
				return fmt.Errorf("bench: --callgrind needs %s (Debian: apt-get install valgrind): %w", tool, err)
			}
		}
		dir, err := filepath.Abs(*callgrind)
		if err == nil {
			err = os.MkdirAll(dir, 0o755)
		}
		if err != nil {
			return fmt.Errorf("bench: --callgrind: %w", err)
		}
		cfg.Callgrind = dir
	}
	if *nodes > 1 && *hookdURL != "" {
		return usageError{"bench: --nodes starts hookd processes; with --url the bench starts none"}
	}
	backend, dir, _ := splitDatabaseURL(*dbURL)
	if *dbURL == "" {
		backend = backendSQLite // in the temporary directory
	}
	switch {
	case *hookdURL != "":
	case *nodes > 1 && backend != backendPostgres:
		return usageError{"bench: --nodes > 1 needs a database several hookd processes share: --database-url postgres://..."}
	case backend == backendSQLite:
		cfg.Backend = "sqlite"
		if dir != "" {
			cfg.Backend += " in " + dir
		}
		cfg.NewDatabase = func(context.Context) (string, func(), error) {
			d, err := os.MkdirTemp(dir, "hookd-bench-")
			if err != nil {
				return "", nil, err
			}
			return "sqlite:" + filepath.Join(d, "hookd.db"), func() { os.RemoveAll(d) }, nil
		}
	case backend == backendPostgres:
		cfg.Backend = "postgres"
		cfg.NewDatabase = func(ctx context.Context) (string, func(), error) { return benchDatabase(ctx, *dbURL) }
	default:
		return usageError{"bench: --database-url must be sqlite:DIR or postgres://..."}
	}
	rep, err := bench.Run(ctx, cfg)
	if rep != nil {
		fmt.Fprintln(stdout)
		if werr := rep.WriteTable(stdout); werr != nil && err == nil {
			err = werr
		}
		if *out != "" {
			if werr := writeReport(*out, rep); werr != nil && err == nil {
				err = werr
			}
		}
	}
	return err
}

func writeReport(path string, rep *bench.Report) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := rep.WriteJSON(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// benchDatabase creates an empty database next to the one admin names and
// returns its URL and a function dropping it. A database per scenario, not
// a schema, so hookd runs on it exactly as it does in production.
func benchDatabase(ctx context.Context, admin string) (string, func(), error) {
	u, err := url.Parse(admin)
	if err != nil {
		return "", nil, fmt.Errorf("--database-url: %w", err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	name := "hookd_bench_" + hex.EncodeToString(b)
	// Parsed as hookd parses it, so that the URL may carry the pool's
	// settings (pool_max_conns...), which a plain connection refuses.
	cfg, err := pgxpool.ParseConfig(admin)
	if err != nil {
		return "", nil, fmt.Errorf("--database-url: %w", err)
	}
	exec := func(ctx context.Context, sql string) error {
		conn, err := pgx.ConnectConfig(ctx, cfg.ConnConfig)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, sql)
		return err
	}
	if err := exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", nil, err
	}
	u.Path = "/" + name
	drop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// FORCE: a hookd that was killed may have left connections.
		if err := exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			fmt.Fprintf(os.Stderr, "hookd bench: dropping %s: %v\n", name, err)
		}
	}
	return u.String(), drop, nil
}

// Command hookd is a self-hosted server for Qovery-compatible organization
// webhooks: it stores webhooks, takes deployment events, and delivers them.
// main only wires; run holds the logic so tests can call it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/hookd/hookd/internal/secrets"
	"github.com/hookd/hookd/internal/store/postgres"
	"github.com/hookd/hookd/internal/store/sqlite"
	"github.com/hookd/hookd/internal/webhook"
)

// Set with -ldflags "-X main.version=... -X main.commit=...".
var (
	version = "dev"
	commit  = ""
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "hookd:", err)
		}
		os.Exit(exitCode(err))
	}
}

// usageError is a mistake in the command line: exit code 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func exitCode(err error) int {
	var u usageError
	if errors.As(err, &u) || errors.Is(err, flag.ErrHelp) {
		return 2
	}
	return 1
}

const usage = `hookd: Qovery-compatible organization webhooks, self-hosted.

Usage:
  hookd serve                 run the server (API, intake, delivery)
  hookd migrate               apply database migrations and exit
  hookd token create|list|revoke
                              manage API tokens
  hookd webhook list|get|create|edit|delete|events|test|recover|stats
                              manage webhooks on a running hookd (HOOKD_URL)
  hookd delivery list|retry   read and retry a webhook's deliveries
  hookd audit                 who changed the organization's webhooks, sources and tokens
  hookd source list|get|create|edit|delete
                              manage event sources (GitHub, GitLab, Flux, Argo CD, Qovery)
  hookd emit                  send a deployment event to a running hookd
  hookd bench                 measure hookd on this machine (rates, latency, memory)
  hookd version               print the version
  hookd completion bash|zsh   print a shell completion script

Configuration is read from HOOKD_* environment variables; "hookd serve --help" lists them.
`

// run is hookd's whole command line. environ is its environment
// (os.Environ()), whole rather than a getenv: serve, migrate and token
// look through every name in it for misspelt ones (checkVariableNames),
// and must look in the environment their configuration is read from.
func run(ctx context.Context, args []string, environ []string, stdout, stderr io.Writer) error {
	getenv := getenvOf(environ)
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usageError{"no command given"}
	}
	switch args[0] {
	case "serve":
		return runServe(ctx, args[1:], environ, stdout, stderr)
	case "migrate":
		return runMigrate(ctx, args[1:], environ, stderr)
	case "token":
		return runToken(ctx, args[1:], environ, stdout, stderr)
	case "webhook":
		return runWebhook(ctx, args[1:], getenv, os.Stdin, stdout, stderr)
	case "delivery":
		return runDelivery(ctx, args[1:], getenv, stdout, stderr)
	case "audit":
		return runAudit(ctx, args[1:], getenv, stdout, stderr)
	case "completion":
		return runCompletion(args[1:], stdout, stderr)
	case "source":
		return runSource(ctx, args[1:], getenv, os.Stdin, stdout, stderr)
	case "emit":
		return runEmit(ctx, args[1:], getenv, os.Stdin, stdout, stderr)
	case "bench":
		return runBench(ctx, args[1:], environ, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, versionString())
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return usageError{fmt.Sprintf("unknown command %q", args[0])}
}

func versionString() string {
	c := commit
	if c == "" {
		if info, ok := debug.ReadBuildInfo(); ok {
			for _, s := range info.Settings {
				if s.Key == "vcs.revision" {
					c = s.Value
				}
			}
		}
	}
	if c == "" {
		c = "unknown"
	}
	return fmt.Sprintf("hookd %s (commit %s, %s)", version, c, runtime.Version())
}

// newFlagSet returns a FlagSet whose --help prints usage and the
// environment variables it reads.
func newFlagSet(name, synopsis string, stderr io.Writer, showEnv bool) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: hookd %s\n", synopsis)
		fs.PrintDefaults()
		if showEnv {
			fmt.Fprintln(stderr, "\nEnvironment:")
			for _, v := range variables {
				def := v.def
				if def == "" {
					def = "(unset)"
				}
				fmt.Fprintf(stderr, "  %-32s %s; default %s\n", v.name, strings.ReplaceAll(v.help, "`", ""), def)
			}
			fmt.Fprintln(stderr, "\nAn unlisted HOOKD_ variable whose name is near a listed one (a typo) stops hookd;\nother unlisted HOOKD_ variables are logged and ignored.")
		}
	}
	return fs
}

// parseFlags is fs.Parse with its mistakes (an unknown flag, a value
// that does not parse) made usage errors, exit status 2, like a missing
// argument; the flag package has already printed them with the usage.
func parseFlags(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		return usageError{err.Error()}
	}
	return err
}

// store is a backend with its migrations, and its purger of deleted
// webhooks' deliveries, whose failures the server logs.
type store interface {
	webhook.Store
	Migrate(ctx context.Context) error
	ReportPurgeErrors(report func(error))
}

// openStore opens the database named by HOOKD_DATABASE_URL, sealing
// secrets with keys (see encryptionKeys).
func openStore(ctx context.Context, d database, keys *secrets.Keyring) (store, error) {
	if d.Backend == backendSQLite {
		return sqlite.Open(ctx, d.Path, keys)
	}
	return postgres.Open(ctx, d.URL, keys)
}

// noKeys is the keyring of the commands that read and write no webhook
// or source (migrate, token): they need no key, so none is asked for.
var noKeys = &secrets.Keyring{}

func newLogger(c *config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.LogLevel}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func runMigrate(ctx context.Context, args []string, environ []string, stderr io.Writer) error {
	fs := newFlagSet("migrate", "migrate [--reencrypt]", stderr, true)
	reencrypt := fs.Bool("reencrypt", false, "also rewrite every webhook secret with the newest HOOKD_ENCRYPTION_KEY")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("migrate takes no arguments, only flags: got %q (for re-encryption, --reencrypt)", fs.Args())}
	}
	c, err := loadServerConfig(environ, stderr)
	if err != nil {
		return err
	}
	// --reencrypt reads the stored values and seals them itself.
	db, err := openStore(ctx, c.Database, noKeys)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		return fmt.Errorf("migrating: %w", err)
	}
	fmt.Fprintln(stderr, "hookd: database is up to date")
	if *reencrypt {
		return reencryptSecrets(ctx, c, db, stderr)
	}
	return nil
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"time"
)

// runServe is `hookd serve`: the configuration is read and checked, the
// app built (newApp) and run until ctx ends.
func runServe(ctx context.Context, args []string, environ []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", "serve", stderr, true)
	addr := fs.String("addr", "", "listen address (overrides HOOKD_ADDR)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("serve takes no arguments, only flags: got %q", fs.Args())}
	}
	ignored, err := checkVariableNames(environ)
	if err != nil {
		return err
	}
	getenv := getenvOf(environ)
	c, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	if *addr != "" {
		c.Addr = *addr
	}
	// hookd's garbage is small and short-lived (a request, a task), and at
	// Go's default target (GOGC=100) collecting it took a tenth of a
	// burst's CPU. Twice the headroom cut the CPU per delivery by 7 % in
	// burst and 15 % in a backlog drain for about a fifth more peak memory
	// (docs/performance.md). A GOGC in the environment is the operator's.
	if getenv("GOGC") == "" {
		debug.SetGCPercent(200)
	}
	log := newLogger(c, stderr)
	for _, name := range ignored {
		log.Warn("ignoring an environment variable hookd does not read", "variable", name)
	}
	a, err := newApp(ctx, c, log, time.Now)
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			// Stopped while starting (waiting for a SQLite file's server
			// lock, say): a stop asked for, not a failure.
			log.Info("hookd stopped before serving", "err", err)
			return nil
		}
		return err
	}
	return a.run(ctx)
}

package main

import (
	"context"
	"io"
	"time"
)

// runServe is `hookd serve`: the configuration is read and checked, the
// app built (newApp) and run until ctx ends.
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
	a, err := newApp(ctx, c, newLogger(c, stderr), time.Now)
	if err != nil {
		return err
	}
	return a.run(ctx)
}

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/hookd/hookd/internal/client"
)

const sourceUsage = `Usage: hookd source COMMAND [flags]

Commands:
  list                  list the organization's event sources
  get SOURCE_ID         show one source, with its ingest URL
  create                create a source
  edit SOURCE_ID        change some fields of a source, keeping the others
  delete SOURCE_ID      delete a source: its ingest URL stops working

A source receives deployment events from GitHub, GitLab, Flux, Argo CD or
Qovery at its ingest URL; docs/sources.md says what to paste into each.
Every command takes --url, --token, --organization and --json;
"hookd source COMMAND --help" lists its flags.
`

func runSource(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, sourceUsage)
		return usageError{"source: no command given"}
	}
	rest := args[1:]
	switch args[0] {
	case "list":
		return sourceList(ctx, rest, getenv, stdout, stderr)
	case "get":
		return sourceGet(ctx, rest, getenv, stdout, stderr)
	case "create":
		return sourceCreate(ctx, rest, getenv, stdin, stdout, stderr)
	case "edit":
		return sourceEdit(ctx, rest, getenv, stdin, stdout, stderr)
	case "delete":
		return sourceDelete(ctx, rest, getenv, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, sourceUsage)
		return nil
	}
	fmt.Fprint(stderr, sourceUsage)
	return usageError{fmt.Sprintf("source: unknown command %q", args[0])}
}

func sourceList(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c := newRemoteCommand("source list", "", "Lists the organization's event sources.", stderr)
	if _, err := c.parse(args, 0, getenv); err != nil {
		return err
	}
	list, err := c.client().ListSources(ctx, c.org)
	if err != nil {
		return err
	}
	if c.json {
		return writeRaw(stdout, list.Raw)
	}
	tw := newTable(stdout)
	fmt.Fprintln(tw, "ID\tKIND\tNAME\tENVIRONMENT TYPES")
	for _, s := range list.Results {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.ID, s.Kind, clip(oneLine(s.Name), 40), orDash(clip(oneLine(formatRules(s.EnvironmentTypes)), 60)))
	}
	return tw.Flush()
}

func sourceGet(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c := newRemoteCommand("source get", "SOURCE_ID", "Shows one event source, with its ingest URL.", stderr)
	pos, err := c.parse(args, 1, getenv)
	if err != nil {
		return err
	}
	s, err := c.client().GetSource(ctx, c.org, pos[0])
	if err != nil {
		return err
	}
	return printSource(stdout, s, c.json)
}

// sourceFlags are the fields of a source as flags, for create and edit.
type sourceFlags struct {
	kind, name, secretFile, envTypes string
}

func (f *sourceFlags) declare(fs *flag.FlagSet) {
	fs.StringVar(&f.kind, "kind", "", "the tool, a `KIND` of GITHUB, GITLAB, FLUX, ARGOCD or QOVERY")
	fs.StringVar(&f.name, "name", "", "a `NAME` for people")
	fs.StringVar(&f.secretFile, "secret-file", "", "read the secret the tool signs with from `FILE` (- for standard input); kept on edit when not given")
	fs.StringVar(&f.envTypes, "env-types", "", "environment type `RULES`, comma-separated pattern=TYPE tried in order, e.g. 'prod*=PRODUCTION,staging=STAGING'; unmatched environments are DEVELOPMENT")
}

// apply sets on req the fields whose flags were given.
func (f *sourceFlags) apply(req *client.SourceRequest, given map[string]bool, stdin io.Reader) error {
	if given["kind"] {
		req.Kind = strings.ToUpper(f.kind)
	}
	if given["name"] {
		req.Name = f.name
	}
	if given["env-types"] {
		rules, err := parseRules(f.envTypes)
		if err != nil {
			return err
		}
		req.EnvironmentTypes = rules
	}
	if given["secret-file"] {
		b, err := readFile("--secret-file", f.secretFile, stdin)
		if err != nil {
			return err
		}
		// A file written by echo or an editor ends in a newline that is
		// not part of the secret.
		secret := strings.TrimRight(string(b), "\r\n")
		if secret == "" {
			return usageError{"--secret-file: the file is empty"}
		}
		req.Secret = &secret
	}
	return nil
}

// parseRules reads "pattern=TYPE,pattern=TYPE", in order.
func parseRules(s string) ([]client.EnvironmentRule, error) {
	rules := []client.EnvironmentRule{}
	for _, item := range splitList(s) {
		pattern, typ, ok := strings.Cut(item, "=")
		if !ok || strings.TrimSpace(pattern) == "" || strings.TrimSpace(typ) == "" {
			return nil, usageError{fmt.Sprintf("--env-types: %q is not pattern=TYPE", item)}
		}
		rules = append(rules, client.EnvironmentRule{Pattern: strings.TrimSpace(pattern), Type: strings.ToUpper(strings.TrimSpace(typ))})
	}
	return rules, nil
}

func formatRules(rules []client.EnvironmentRule) string {
	parts := make([]string, len(rules))
	for i, r := range rules {
		parts[i] = r.Pattern + "=" + r.Type
	}
	return strings.Join(parts, ",")
}

func sourceCreate(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	c := newRemoteCommand("source create", "",
		"Creates an event source and shows it, with the ingest URL to give the tool.\n"+
			"--kind, --name and --secret-file are required.", stderr)
	var f sourceFlags
	f.declare(c.fs)
	if _, err := c.parse(args, 0, getenv); err != nil {
		return err
	}
	given := c.given()
	if !given["secret-file"] {
		return usageError{"source create: --secret-file is required (the secret is never taken as an argument, which ps would show)"}
	}
	req := client.SourceRequest{EnvironmentTypes: []client.EnvironmentRule{}}
	if err := f.apply(&req, given, stdin); err != nil {
		return err
	}
	s, err := c.client().CreateSource(ctx, c.org, req)
	if err != nil {
		return err
	}
	return printSource(stdout, s, c.json)
}

func sourceEdit(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	c := newRemoteCommand("source edit", "SOURCE_ID",
		"Changes the fields given as flags and keeps the others, then shows the source.\n"+
			"--env-types \"\" removes every rule.", stderr)
	var f sourceFlags
	f.declare(c.fs)
	pos, err := c.parse(args, 1, getenv)
	if err != nil {
		return err
	}
	given := c.given()
	if !given["kind"] && !given["name"] && !given["secret-file"] && !given["env-types"] {
		return usageError{"source edit: nothing to change; give at least one field flag (see --help)"}
	}
	// The API's edit replaces every field, so the command reads the
	// source first and sends it back with the given flags applied, with
	// If-Match: a source changed in between is not overwritten (412; run
	// the command again).
	cl := c.client()
	s, err := cl.GetSource(ctx, c.org, pos[0])
	if err != nil {
		return err
	}
	req := s.Request()
	if err := f.apply(&req, given, stdin); err != nil {
		return err
	}
	if s, err = cl.EditSource(ctx, c.org, s.ID, req); err != nil {
		var apiErr *client.APIError
		if errors.As(err, &apiErr) && apiErr.Status == http.StatusPreconditionFailed {
			return fmt.Errorf("source %s changed while this command edited it, so nothing was changed: run the command again", pos[0])
		}
		return err
	}
	return printSource(stdout, s, c.json)
}

func sourceDelete(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	c := newRemoteCommand("source delete", "SOURCE_ID",
		"Deletes an event source; its ingest URL answers 404 from then on. --json prints nothing.", stderr)
	pos, err := c.parse(args, 1, getenv)
	if err != nil {
		return err
	}
	if err := c.client().DeleteSource(ctx, c.org, pos[0]); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "hookd: deleted source %s\n", pos[0])
	return nil
}

func printSource(w io.Writer, s *client.Source, asJSON bool) error {
	if asJSON {
		return writeRaw(w, s.Raw)
	}
	secret := "not set"
	switch {
	case s.SecretUnreadable:
		secret = unreadableSecret
	case s.SecretSet:
		secret = "set"
	}
	tw := newTable(w)
	// A line break in a value (a name or a pattern holds any text) would
	// print as a row of its own, a field the source does not have.
	row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, oneLine(v)) }
	row("ID", s.ID)
	row("Kind", s.Kind)
	row("Name", s.Name)
	row("Secret", secret)
	row("Environment types", orDash(formatRules(s.EnvironmentTypes))+" (else DEVELOPMENT)")
	row("Ingest URL", s.IngestURL)
	row("Created", s.CreatedAt.UTC().Format(time.RFC3339))
	row("Updated", s.UpdatedAt.UTC().Format(time.RFC3339))
	return tw.Flush()
}

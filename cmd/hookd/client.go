package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hookd/hookd/internal/client"
)

// The client commands talk to a running hookd over its API, never to the
// database: they are what a person or a CI job uses from anywhere, with
// the same authentication and validation as any other caller.

const webhookUsage = `Usage: hookd webhook COMMAND [flags]

Commands:
  list                  list the organization's webhooks
  get WEBHOOK_ID        show one webhook
  create                create a webhook
  edit WEBHOOK_ID       change some fields of a webhook, keeping the others
  delete WEBHOOK_ID     delete a webhook
  events WEBHOOK_ID     show the webhook's latest delivery attempts
  test WEBHOOK_ID       send a sample event to the webhook alone
  recover WEBHOOK_ID    re-queue a window's failed (and --pending) deliveries after an outage
  stats WEBHOOK_ID      show the webhook's health over the last 24 hours and 7 days

Every command takes --url, --token, --organization and --json;
"hookd webhook COMMAND --help" lists its flags.
`

func runWebhook(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, webhookUsage)
		return usageError{"webhook: no command given"}
	}
	rest := args[1:]
	switch args[0] {
	case "list":
		return webhookList(ctx, rest, getenv, stdout, stderr)
	case "get":
		return webhookGet(ctx, rest, getenv, stdout, stderr)
	case "create":
		return webhookCreate(ctx, rest, getenv, stdin, stdout, stderr)
	case "edit":
		return webhookEdit(ctx, rest, getenv, stdin, stdout, stderr)
	case "delete":
		return webhookDelete(ctx, rest, getenv, stderr)
	case "events":
		return webhookEvents(ctx, rest, getenv, stdout, stderr)
	case "test":
		return webhookTest(ctx, rest, getenv, stdout, stderr)
	case "recover":
		return webhookRecover(ctx, rest, getenv, stdout, stderr)
	case "stats":
		return webhookStats(ctx, rest, getenv, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, webhookUsage)
		return nil
	}
	fmt.Fprint(stderr, webhookUsage)
	return usageError{fmt.Sprintf("webhook: unknown command %q", args[0])}
}

// remoteCommand is a command that calls the API: its flag set and the
// flags every such command shares.
type remoteCommand struct {
	fs    *flag.FlagSet
	args  string // the positional arguments, "" for none
	url   string
	token string
	org   string
	json  bool
}

// newRemoteCommand declares the shared flags. Their defaults come from
// the environment after parsing, not as flag defaults, so that --help
// never prints the token.
func newRemoteCommand(name, args, about string, stderr io.Writer) *remoteCommand {
	c := &remoteCommand{fs: flag.NewFlagSet(name, flag.ContinueOnError), args: args}
	c.fs.SetOutput(stderr)
	c.fs.StringVar(&c.url, "url", "", "hookd's base `URL` (default $HOOKD_URL, else http://localhost:8080)")
	c.fs.StringVar(&c.token, "token", "", "API token or JWT (default $HOOKD_TOKEN; prefer the variable, as arguments show in ps)")
	c.fs.StringVar(&c.org, "organization", "", "organization `UUID` (default $HOOKD_ORGANIZATION)")
	c.fs.BoolVar(&c.json, "json", false, "print the API's JSON answer unchanged instead of a table")
	c.fs.Usage = func() {
		synopsis := name + " [flags]"
		if args != "" {
			synopsis += " " + args
		}
		fmt.Fprintf(stderr, "Usage: hookd %s\n\n%s\n\nFlags:\n", synopsis, about)
		c.fs.PrintDefaults()
	}
	return c
}

// parse parses flags placed before or after the positional arguments
// (people type "get ID --json" as often as "get --json ID"), checks there
// are n of them, and fills the shared flags from the environment.
func (c *remoteCommand) parse(args []string, n int, getenv func(string) string) ([]string, error) {
	var pos []string
	for {
		if err := parseFlags(c.fs, args); err != nil {
			return nil, err
		}
		if c.fs.NArg() == 0 {
			break
		}
		pos = append(pos, c.fs.Arg(0))
		args = c.fs.Args()[1:]
	}
	if len(pos) != n {
		if n == 0 {
			return nil, usageError{fmt.Sprintf("%s takes no arguments, got %q", c.fs.Name(), pos)}
		}
		return nil, usageError{fmt.Sprintf("%s takes %s", c.fs.Name(), c.args)}
	}
	for _, f := range []struct {
		v        *string
		env, def string
	}{{&c.url, "HOOKD_URL", "http://localhost:8080"}, {&c.token, "HOOKD_TOKEN", ""}, {&c.org, "HOOKD_ORGANIZATION", ""}} {
		if *f.v == "" {
			*f.v = getenv(f.env)
		}
		if *f.v == "" {
			*f.v = f.def
		}
	}
	if u, err := url.Parse(c.url); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usageError{fmt.Sprintf("--url %q is not an http:// or https:// URL", c.url)}
	}
	if c.token == "" {
		return nil, usageError{"no token: set HOOKD_TOKEN (or --token); hookd token create makes one"}
	}
	if c.org == "" {
		return nil, usageError{"no organization: set HOOKD_ORGANIZATION (or --organization)"}
	}
	return pos, nil
}

// given reports which flags the command line set, so edit can tell "not
// given" from a zero value.
func (c *remoteCommand) given() map[string]bool {
	set := map[string]bool{}
	c.fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return set
}

// checkLimit refuses a --limit given outside 1 to 100, as its help says:
// 0 would otherwise not be sent at all and list the server's default.
func (c *remoteCommand) checkLimit(limit int) error {
	if c.given()["limit"] && (limit < 1 || limit > 100) {
		return usageError{fmt.Sprintf("--limit %d: the most to show is 1 to 100", limit)}
	}
	return nil
}

func (c *remoteCommand) client() *client.Client {
	// The context cancels on a signal; the timeout covers a server that
	// accepts the connection and never answers.
	return client.New(c.url, c.token, &http.Client{Timeout: 60 * time.Second})
}

func webhookList(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c := newRemoteCommand("webhook list", "", "Lists the organization's webhooks.", stderr)
	if _, err := c.parse(args, 0, getenv); err != nil {
		return err
	}
	list, err := c.client().ListWebhooks(ctx, c.org)
	if err != nil {
		return err
	}
	if c.json {
		return writeRaw(stdout, list.Raw)
	}
	tw := newTable(stdout)
	fmt.Fprintln(tw, "ID\tKIND\tENABLED\tFAILING SINCE\tEVENTS\tTARGET\tDESCRIPTION")
	for _, w := range list.Results {
		failing := "-"
		if w.FailingSince != nil {
			failing = w.FailingSince.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", w.ID, w.Kind, yesNo(w.Enabled), failing, orDash(strings.Join(w.Events, ",")),
			shortURL(w.TargetURL, 48), orDash(clip(oneLine(w.Description), 40)))
	}
	return tw.Flush()
}

func webhookGet(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c := newRemoteCommand("webhook get", "WEBHOOK_ID", "Shows one webhook.", stderr)
	pos, err := c.parse(args, 1, getenv)
	if err != nil {
		return err
	}
	w, err := c.client().GetWebhook(ctx, c.org, pos[0])
	if err != nil {
		return err
	}
	return printWebhook(stdout, w, c.json)
}

// webhookFlags are the fields of a webhook as flags, for create and edit.
type webhookFlags struct {
	kind, targetURL, events, description string
	secret, secretFile                   string
	projects, envs                       string
	enabled, removeSecret                bool
	stdin                                io.Reader
}

func (f *webhookFlags) declare(fs *flag.FlagSet, edit bool) {
	// An edit keeps what is not given, so it promises no default.
	kindHelp, enabledHelp, enabledDefault := " (default STANDARD)", "", true
	if edit {
		kindHelp, enabledHelp, enabledDefault = "", " (--enabled alone resumes it)", false
	}
	fs.StringVar(&f.kind, "kind", "", "`KIND`: STANDARD or SLACK"+kindHelp)
	fs.StringVar(&f.targetURL, "target-url", "", "the `URL` events are sent to")
	fs.StringVar(&f.events, "events", "", "comma-separated event `TYPES`, e.g. DEPLOYMENT_STARTED,DEPLOYMENT_FAILURE")
	fs.StringVar(&f.description, "description", "", "a description for people")
	fs.StringVar(&f.secretFile, "secret-file", "", "read the signing secret from `FILE` (- for standard input; kept on edit when not given)")
	fs.StringVar(&f.secret, "secret", "", "refused: a secret on the command line shows in ps and shell history; use --secret-file")
	fs.BoolVar(&f.enabled, "enabled", enabledDefault, "whether events are delivered: --enabled=false pauses the webhook"+enabledHelp)
	fs.StringVar(&f.projects, "project-filter", "", "comma-separated project name `PATTERNS`; empty means every project")
	fs.StringVar(&f.envs, "env-filter", "", "comma-separated environment `MODES` (PRODUCTION, STAGING, DEVELOPMENT, PREVIEW); empty means every one")
	if edit {
		fs.BoolVar(&f.removeSecret, "remove-secret", false, "remove the signing secret: events go out unsigned")
	}
}

// apply sets on req the fields whose flags were given; the others keep
// the values req came with.
func (f *webhookFlags) apply(req *client.WebhookRequest, given map[string]bool) error {
	if given["secret"] {
		return usageError{"--secret: a secret on the command line shows in ps and shell history; write it to a file (or pipe it) and use --secret-file FILE (- for standard input)"}
	}
	if given["secret-file"] && f.removeSecret {
		return usageError{"--secret-file and --remove-secret contradict each other"}
	}
	if given["secret-file"] {
		b, err := readFile("--secret-file", f.secretFile, f.stdin)
		if err != nil {
			return err
		}
		// Files and echo end in a newline that is not part of the secret.
		secret := strings.TrimRight(string(b), "\r\n")
		if secret == "" {
			// Far more often a wrong file than an intent to remove the
			// secret, so removing takes its own flag.
			return usageError{"--secret-file: the secret is empty: leave the flag out to keep the secret as it is, or use --remove-secret on edit"}
		}
		req.TargetSecret = &secret
	}
	if given["kind"] {
		req.Kind = f.kind
	}
	if given["target-url"] {
		req.TargetURL = f.targetURL
	}
	if given["events"] {
		req.Events = splitList(f.events)
	}
	if given["description"] {
		req.Description = f.description
	}
	if f.removeSecret {
		req.TargetSecret = new(string)
	}
	if given["enabled"] {
		req.Enabled = &f.enabled
	}
	if given["project-filter"] {
		req.ProjectNamesFilter = splitList(f.projects)
	}
	if given["env-filter"] {
		req.EnvironmentTypesFilter = splitList(f.envs)
	}
	return nil
}

func webhookCreate(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	c := newRemoteCommand("webhook create", "", "Creates a webhook and shows it. --target-url and --events are required.", stderr)
	f := webhookFlags{stdin: stdin}
	f.declare(c.fs, false)
	if _, err := c.parse(args, 0, getenv); err != nil {
		return err
	}
	req := client.WebhookRequest{Kind: "STANDARD", Events: []string{}, ProjectNamesFilter: []string{}, EnvironmentTypesFilter: []string{}}
	if err := f.apply(&req, c.given()); err != nil {
		return err
	}
	w, err := c.client().CreateWebhook(ctx, c.org, req)
	if err != nil {
		return err
	}
	return printWebhook(stdout, w, c.json)
}

func webhookEdit(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	c := newRemoteCommand("webhook edit", "WEBHOOK_ID",
		"Changes the fields given as flags and keeps the others, then shows the webhook.\n"+
			"A list flag given empty (--project-filter \"\") clears that list.", stderr)
	f := webhookFlags{stdin: stdin}
	f.declare(c.fs, true)
	pos, err := c.parse(args, 1, getenv)
	if err != nil {
		return err
	}
	given := c.given()
	changes := false
	for _, name := range []string{"kind", "target-url", "events", "description", "secret", "secret-file", "remove-secret", "enabled", "project-filter", "env-filter"} {
		changes = changes || given[name]
	}
	if !changes {
		return usageError{"webhook edit: nothing to change; give at least one field flag (see --help)"}
	}
	// The API's edit replaces every field, so the command reads the
	// webhook first and sends it back with the given flags applied, with
	// If-Match: a webhook changed in between is not overwritten (412; run
	// the command again). The secret and `enabled` are sent only when
	// given.
	cl := c.client()
	w, err := cl.GetWebhook(ctx, c.org, pos[0])
	if err != nil {
		return err
	}
	req := w.Request()
	if err := f.apply(&req, given); err != nil {
		return err
	}
	if w, err = cl.EditWebhook(ctx, c.org, w.ID, req); err != nil {
		var apiErr *client.APIError
		if errors.As(err, &apiErr) && apiErr.Status == http.StatusPreconditionFailed {
			return fmt.Errorf("webhook %s changed while this command edited it, so nothing was changed: run the command again", pos[0])
		}
		return err
	}
	return printWebhook(stdout, w, c.json)
}

func webhookDelete(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	c := newRemoteCommand("webhook delete", "WEBHOOK_ID",
		"Deletes a webhook and its delivery log. The API answers with no body, so --json prints nothing.", stderr)
	pos, err := c.parse(args, 1, getenv)
	if err != nil {
		return err
	}
	if err := c.client().DeleteWebhook(ctx, c.org, pos[0]); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "hookd: deleted webhook %s\n", pos[0])
	return nil
}

func webhookEvents(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c := newRemoteCommand("webhook events", "WEBHOOK_ID",
		"Shows the webhook's latest delivery attempts, newest first (--json includes each request sent and response body).", stderr)
	pos, err := c.parse(args, 1, getenv)
	if err != nil {
		return err
	}
	list, err := c.client().ListWebhookEvents(ctx, c.org, pos[0])
	if err != nil {
		return err
	}
	if c.json {
		return writeRaw(stdout, list.Raw)
	}
	tw := newTable(stdout)
	fmt.Fprintln(tw, "TIME\tEVENT\tSTATUS\tDURATION\tATTEMPT\tDELIVERY\tERROR")
	for _, e := range list.Results {
		status := "-" // no answer: the error says why
		if e.TargetResponseStatusCode != 0 {
			status = fmt.Sprint(e.TargetResponseStatusCode)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", e.CreatedAt.UTC().Format(time.RFC3339), orDash(e.MatchedEvent), status,
			time.Duration(e.DurationMS)*time.Millisecond, e.Attempt, e.DeliveryID, orDash(clip(oneLine(e.Error), 60)))
	}
	return tw.Flush()
}

func runEmit(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	c := newRemoteCommand("emit", "",
		"Sends a deployment event to hookd, which delivers it to every matching webhook.\n"+
			"Describe it with --event-type, --project, --environment and --mode, or\n"+
			"give a whole event document with --file (- reads standard input).", stderr)
	var (
		eventType = c.fs.String("event-type", "", "`TYPE`: DEPLOYMENT_STARTED, DEPLOYMENT_SUCCESSFUL, DEPLOYMENT_FAILURE or DEPLOYMENT_CANCELLED")
		project   = c.fs.String("project", "", "project `NAME`")
		env       = c.fs.String("environment", "", "environment `NAME`")
		mode      = c.fs.String("mode", "", "environment `MODE`: PRODUCTION, STAGING, DEVELOPMENT or PREVIEW")
		deployID  = c.fs.String("deployment-id", "", "the deployment's `ID`, if it has one")
		key       = c.fs.String("idempotency-key", "", "a `KEY` that makes sending the same event again harmless: the server answers with the first one")
		file      = c.fs.String("file", "", "read the event from `FILE` as JSON, sent unchanged; - for standard input")
	)
	if _, err := c.parse(args, 0, getenv); err != nil {
		return err
	}
	given := c.given()
	var event any
	if given["file"] {
		for _, name := range []string{"event-type", "project", "environment", "mode", "deployment-id"} {
			if given[name] {
				return usageError{fmt.Sprintf("--file sends the document as written; --%s cannot be combined with it", name)}
			}
		}
		doc, err := readFile("--file", *file, stdin)
		if err != nil {
			return err
		}
		event = json.RawMessage(doc)
	} else {
		for _, f := range []struct{ name, v string }{{"event-type", *eventType}, {"project", *project}, {"environment", *env}, {"mode", *mode}} {
			if f.v == "" {
				return usageError{fmt.Sprintf("emit: --%s is required (or give the whole event with --file)", f.name)}
			}
		}
		event = client.DeploymentEvent{
			EventType:    *eventType,
			DeploymentID: *deployID,
			Project:      client.DeploymentProject{Name: *project},
			Environment:  client.DeploymentEnvironment{Name: *env, Mode: *mode},
		}
	}
	a, err := c.client().EmitDeploymentEvent(ctx, c.org, event, *key)
	if err != nil {
		return err
	}
	if c.json {
		return writeRaw(stdout, a.Raw)
	}
	tw := newTable(stdout)
	fmt.Fprintln(tw, "EVENT ID\tCREATED\tDELIVERIES")
	fmt.Fprintf(tw, "%s\t%s\t%d\n", a.ID, a.CreatedAt.UTC().Format(time.RFC3339), a.Deliveries)
	return tw.Flush()
}

// readFile reads the file a flag names, or standard input for "-"; its
// errors name the flag.
func readFile(flag, name string, stdin io.Reader) ([]byte, error) {
	if name == "-" {
		if stdin == nil {
			return nil, fmt.Errorf("%s -: no standard input", flag)
		}
		return io.ReadAll(stdin)
	}
	if name == "" {
		return nil, usageError{flag + " needs a file name, or - for standard input"}
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	return b, nil
}

// unreadableSecret is shown for a secret the server cannot decrypt: it
// is stored, so "not set" would say a webhook's deliveries go out
// unsigned, or that a source takes anyone's events.
const unreadableSecret = "cannot be decrypted: its key is not in the server's HOOKD_ENCRYPTION_KEY (the operator must add it back; it can be deleted meanwhile)"

// printWebhook shows one webhook: the API's object with --json, else one
// field per line with the target URL in full.
func printWebhook(w io.Writer, h *client.Webhook, asJSON bool) error {
	if asJSON {
		return writeRaw(w, h.Raw)
	}
	secret := "not set"
	switch {
	case h.SecretsUnreadable:
		secret = unreadableSecret
	case h.TargetSecretSet:
		secret = "set"
	}
	tw := newTable(w)
	// A line break in a value (a project filter holds any text) would
	// print as a row of its own, a field the webhook does not have.
	row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, oneLine(v)) }
	row("ID", h.ID)
	row("Kind", h.Kind)
	row("Target URL", h.TargetURL)
	row("Secret", secret)
	row("Description", orDash(h.Description))
	row("Enabled", yesNo(h.Enabled))
	if h.DisabledReason != "" {
		row("Disabled reason", h.DisabledReason)
	}
	if h.FailingSince != nil {
		row("Failing since", h.FailingSince.UTC().Format(time.RFC3339))
	}
	if h.PreviousSecretExpiresAt != nil {
		// Receivers may still verify with the previous secret until then.
		row("Previous secret", "still signs deliveries until "+h.PreviousSecretExpiresAt.UTC().Format(time.RFC3339))
	}
	row("Events", orDash(strings.Join(h.Events, ", ")))
	row("Project filter", orAll(h.ProjectNamesFilter))
	row("Environment filter", orAll(h.EnvironmentTypesFilter))
	row("Created", h.CreatedAt.UTC().Format(time.RFC3339))
	row("Updated", h.UpdatedAt.UTC().Format(time.RFC3339))
	return tw.Flush()
}

// writeRaw prints an answer as the API sent it, ending in one newline so
// the output is one JSON document a shell pipeline can read. JSON escapes
// C0 control characters but not DEL, C1 ones (U+009B is CSI, U+009D OSC
// to a terminal reading UTF-8) or bidirectional controls, and a string
// holds a target's answer or any token holder's text: each is written as
// its \u escape instead, the same JSON (in valid JSON they are only ever
// inside a string), so that a terminal shows it rather than obeys it.
func writeRaw(w io.Writer, raw json.RawMessage) error {
	raw = bytes.TrimRight(raw, "\n")
	out := make([]byte, 0, len(raw)+1)
	for len(raw) > 0 {
		r, n := utf8.DecodeRune(raw)
		if r != '\t' && r != '\n' && r != '\r' && obeyed(r) {
			out = fmt.Appendf(out, `\u%04x`, r)
		} else {
			out = append(out, raw[:n]...)
		}
		raw = raw[n:]
	}
	_, err := w.Write(append(out, '\n'))
	return err
}

// newTable returns a table writer that prints no control character but
// tab and newline: its cells hold what any caller of the organization
// wrote (descriptions, names, filters), and a terminal would obey an
// escape sequence among them (erase the lines above, retitle the window)
// rather than show it. A bidirectional control is no control character
// to Go, but a terminal that lays out right-to-left text would show the
// rest of the row, the next columns included, reordered by it.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(printable{w}, 0, 4, 2, ' ', 0)
}

// printable writes text with each control character but tab and newline,
// and each bidirectional control, replaced by U+FFFD, one character for
// one, so columns stay aligned.
type printable struct{ w io.Writer }

func (p printable) Write(b []byte) (int, error) {
	clean := strings.Map(func(r rune) rune {
		if r != '\t' && r != '\n' && obeyed(r) {
			return utf8.RuneError
		}
		return r
	}, string(b))
	if _, err := io.WriteString(p.w, clean); err != nil {
		return 0, err
	}
	return len(b), nil
}

// obeyed reports whether a terminal acts on r rather than shows it: a
// control character, or a bidirectional control (no control character
// to Go, but one that reorders the rest of the line).
func obeyed(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func orAll(list []string) string {
	if len(list) == 0 {
		return "(all)"
	}
	return strings.Join(list, ", ")
}

// splitList reads a comma-separated flag; an empty one is an empty list,
// which clears a filter.
func splitList(s string) []string {
	out := []string{}
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// shortURL fits a URL in a table column. The scheme and query go first,
// then the end of the path: the host and the start of the path are what
// tell one target from another, and a Slack URL's tail is a credential a
// listing on screen had better not show in full.
func shortURL(s string, n int) string {
	if u, err := url.Parse(s); err == nil && u.Host != "" {
		s = u.Host + u.EscapedPath()
		if u.RawQuery != "" {
			s += "?…"
		}
	}
	return clip(s, n)
}

// clip cuts s to at most n characters, marking the cut.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// oneLine keeps a table row on one line whatever a description holds.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

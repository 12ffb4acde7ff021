package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/hookd/hookd/internal/client"
)

// runAudit lists the organization's audit trail, as the console's audit
// log page does.
func runAudit(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c := newRemoteCommand("audit", "",
		"Lists who changed the organization's webhooks, event sources and API tokens, newest first, a page at a time;\n"+
			"the next page's --cursor is printed on standard error. Secrets are never recorded.", stderr)
	cursor := c.fs.String("cursor", "", "the `CURSOR` printed by the previous page")
	limit := c.fs.Int("limit", 0, "the most entries to show, 1 to 100 (default 50)")
	if _, err := c.parse(args, 0, getenv); err != nil {
		return err
	}
	if err := c.checkLimit(*limit); err != nil {
		return err
	}
	page, err := c.client().ListAudit(ctx, c.org, *cursor, *limit)
	if err != nil {
		return err
	}
	if c.json {
		return writeRaw(stdout, page.Raw)
	}
	tw := newTable(stdout)
	fmt.Fprintln(tw, "TIME\tWHO\tACTION\tON\tCHANGES")
	for _, e := range page.Results {
		who := e.Actor.Kind
		if e.Actor.ID != "" {
			who += ":" + e.Actor.ID
		}
		// A source's name (any token holder's text) or a JWT's subject
		// holding a line break would print as an entry of its own: an
		// audit log that shows what never happened.
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.CreatedAt.UTC().Format(time.RFC3339), oneLine(who), e.Action,
			shortURL(orDash(oneLine(e.ResourceName)), 48), orDash(changeSummary(e)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if page.NextCursor != "" {
		fmt.Fprintf(stderr, "hookd: more entries: add --cursor %s\n", page.NextCursor)
	}
	return nil
}

// changeSummary names the fields an entry changed; a secret says only
// what happened to it, and a recovery its window and how many deliveries.
func changeSummary(e client.AuditEntry) string {
	var parts []string
	for _, c := range e.Changes {
		switch {
		case c.Secret != "":
			parts = append(parts, c.Field+" "+c.Secret)
		case e.Action == "webhook.recovered":
			v := strings.Trim(string(c.After), `"`)
			if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
				v = t.UTC().Format(time.RFC3339)
			}
			parts = append(parts, c.Field+"="+v)
		default:
			parts = append(parts, c.Field)
		}
	}
	if e.Action == "webhook.recovered" {
		// Short enough whole (a window, a filter, three counts), and the
		// counts, what an operator reads it for, come last.
		return strings.Join(parts, ", ")
	}
	return clip(strings.Join(parts, ", "), 100)
}

package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/hookd/hookd/internal/client"
)

const deliveryUsage = `Usage: hookd delivery COMMAND [flags]

Commands:
  list WEBHOOK_ID                 list the webhook's deliveries, newest first
  retry WEBHOOK_ID DELIVERY_ID    send a delivery once more, now

Every command takes --url, --token, --organization and --json;
"hookd delivery COMMAND --help" lists its flags.
`

func runDelivery(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, deliveryUsage)
		return usageError{"delivery: no command given"}
	}
	switch args[0] {
	case "list":
		return deliveryList(ctx, args[1:], getenv, stdout, stderr)
	case "retry":
		return deliveryRetry(ctx, args[1:], getenv, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, deliveryUsage)
		return nil
	}
	fmt.Fprint(stderr, deliveryUsage)
	return usageError{fmt.Sprintf("delivery: unknown command %q", args[0])}
}

func deliveryList(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c := newRemoteCommand("delivery list", "WEBHOOK_ID",
		"Lists the webhook's deliveries (one per event), newest first, a page at a time;\n"+
			"the next page's --cursor is printed on standard error.", stderr)
	var p client.DeliveryListParams
	c.fs.StringVar(&p.Status, "status", "", "only deliveries with this `STATUS`: pending, running, succeeded or failed")
	c.fs.IntVar(&p.Limit, "limit", 0, "the most deliveries to show, 1 to 100 (default 50)")
	c.fs.StringVar(&p.Cursor, "cursor", "", "the `CURSOR` printed by the previous page")
	pos, err := c.parse(args, 1, getenv)
	if err != nil {
		return err
	}
	if err := c.checkLimit(p.Limit); err != nil {
		return err
	}
	page, err := c.client().ListDeliveries(ctx, c.org, pos[0], p)
	if err != nil {
		return err
	}
	if c.json {
		return writeRaw(stdout, page.Raw)
	}
	tw := newTable(stdout)
	fmt.Fprintln(tw, "ID\tCREATED\tEVENT\tSTATUS\tATTEMPTS\tLAST ANSWER\tNEXT ATTEMPT")
	for _, d := range page.Results {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", d.ID, d.CreatedAt.UTC().Format(time.RFC3339), d.EventType, d.Status, d.Attempts,
			lastAnswer(d), nextAttempt(d))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if page.NextCursor != "" {
		fmt.Fprintf(stderr, "hookd: more deliveries: add --cursor %s\n", page.NextCursor)
	}
	return nil
}

func deliveryRetry(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c := newRemoteCommand("delivery retry", "WEBHOOK_ID DELIVERY_ID",
		"Makes a pending or finished delivery due now for one more attempt, and shows it.\n"+
			"A delivery being sent right now, or one of a disabled webhook, cannot be retried.", stderr)
	pos, err := c.parse(args, 2, getenv)
	if err != nil {
		return err
	}
	d, err := c.client().RetryDelivery(ctx, c.org, pos[0], pos[1])
	if err != nil {
		return err
	}
	if c.json {
		return writeRaw(stdout, d.Raw)
	}
	tw := newTable(stdout)
	fmt.Fprintln(tw, "ID\tSTATUS\tATTEMPTS\tNEXT ATTEMPT")
	fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", d.ID, d.Status, d.Attempts, nextAttempt(*d))
	return tw.Flush()
}

// lastAnswer is what the last attempt got: its status code, or its error.
func lastAnswer(d client.Delivery) string {
	switch {
	case d.LastStatusCode != 0:
		return fmt.Sprint(d.LastStatusCode)
	case d.LastError != "":
		return clip(oneLine(d.LastError), 40)
	}
	return "-"
}

func nextAttempt(d client.Delivery) string {
	if d.NextAttemptAt == nil {
		return "-"
	}
	return d.NextAttemptAt.UTC().Format(time.RFC3339)
}

package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/hookd/hookd/internal/client"
)

// The commands an operator runs on a webhook rather than to change it:
// send a test event, recover after an outage, read its health.

func webhookTest(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c := newRemoteCommand("webhook test", "WEBHOOK_ID",
		"Sends a sample deployment event to this webhook alone, whatever its filters;\n"+
			"follow it with hookd webhook events. A disabled webhook is sent nothing: enable it first.", stderr)
	pos, err := c.parse(args, 1, getenv)
	if err != nil {
		return err
	}
	r, err := c.client().TestWebhook(ctx, c.org, pos[0])
	if err != nil {
		return err
	}
	if c.json {
		return writeRaw(stdout, r.Raw)
	}
	tw := newTable(stdout)
	fmt.Fprintln(tw, "EVENT ID\tDELIVERY ID")
	fmt.Fprintf(tw, "%s\t%s\n", r.EventID, r.DeliveryID)
	return tw.Flush()
}

func webhookRecover(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c := newRemoteCommand("webhook recover", "WEBHOOK_ID",
		"After the webhook's receiver was down: makes every failed delivery created since\n"+
			"--since (and before --until) due now, for one more attempt each. With --pending,\n"+
			"also makes due now the pending deliveries waiting for a retry (attempted, due later),\n"+
			"which keep their attempt count. Deliveries running, succeeded or never attempted\n"+
			"are left alone; running it twice re-queues nothing twice.", stderr)
	var since, until, status string
	var pending bool
	c.fs.StringVar(&since, "since", "", "recover deliveries created from this `TIME`: RFC 3339 (2026-12-04T09:00:00Z) or a duration ago (2h)")
	c.fs.StringVar(&until, "until", "", "and before this `TIME` (default now), in the same forms")
	c.fs.StringVar(&status, "status", "", "only those whose last answer was this `STATUS`: a code (503), a class (5xx) or none (no answer)")
	c.fs.BoolVar(&pending, "pending", false, "also make due now the pending deliveries waiting for a retry, as selected by --since, --until and --status")
	pos, err := c.parse(args, 1, getenv)
	if err != nil {
		return err
	}
	now := time.Now()
	req := client.RecoverRequest{Status: status, Pending: pending}
	if since == "" {
		return usageError{"webhook recover: --since is required, e.g. --since 2h or --since 2026-12-04T09:00:00Z"}
	}
	if req.Since, err = timeFlag("since", since, now); err != nil {
		return err
	}
	if until != "" {
		if req.Until, err = timeFlag("until", until, now); err != nil {
			return err
		}
	}
	r, err := c.client().RecoverWebhook(ctx, c.org, pos[0], req)
	if err != nil {
		return err
	}
	if c.json {
		return writeRaw(stdout, r.Raw)
	}
	tw := newTable(stdout)
	fmt.Fprintln(tw, "RECOVERED\tFAILED\tPENDING\tSINCE\tUNTIL")
	fmt.Fprintf(tw, "%d\t%d\t%d\t%s\t%s\n", r.Deliveries, r.Failed, r.Pending, r.Since.UTC().Format(time.RFC3339), r.Until.UTC().Format(time.RFC3339))
	return tw.Flush()
}

// timeFlag reads a time given as RFC 3339 or as a duration before now,
// and returns it as RFC 3339 for the API.
func timeFlag(name, v string, now time.Time) (string, error) {
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return now.Add(-d).UTC().Format(time.RFC3339Nano), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t.UTC().Format(time.RFC3339Nano), nil
	}
	return "", usageError{fmt.Sprintf("--%s %q is neither an RFC 3339 time (2026-12-04T09:00:00Z) nor a duration ago (2h, 30m)", name, v)}
}

func webhookStats(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c := newRemoteCommand("webhook stats", "WEBHOOK_ID",
		"Shows the webhook's health over the last 24 hours and 7 days: attempts, failures\n"+
			"(no 2xx answer), success rate and p50/p95 response times; --json adds hourly and daily buckets.", stderr)
	pos, err := c.parse(args, 1, getenv)
	if err != nil {
		return err
	}
	st, err := c.client().GetWebhookStats(ctx, c.org, pos[0])
	if err != nil {
		return err
	}
	if c.json {
		return writeRaw(stdout, st.Raw)
	}
	tw := newTable(stdout)
	fmt.Fprintln(tw, "WINDOW\tATTEMPTS\tFAILURES\tSUCCESS\tP50\tP95\tHOURLY/DAILY FAILURES")
	for _, w := range []struct {
		name string
		s    client.WindowStats
	}{{"24h", st.Last24Hours}, {"7d", st.Last7Days}} {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\t%s\n", w.name, w.s.Attempts, w.s.Failures, percent(w.s.SuccessRate),
			millis(w.s.P50MS), millis(w.s.P95MS), spark(w.s.Buckets))
	}
	return tw.Flush()
}

func percent(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", *v*100)
}

func millis(v *float64) string {
	if v == nil {
		return "-"
	}
	return (time.Duration(*v * float64(time.Millisecond))).Round(100 * time.Microsecond).String()
}

// spark draws each bucket as one character, oldest first: "." without
// attempts, "_" with no failure, and "x" with at least one.
func spark(buckets []client.StatsBucket) string {
	var b strings.Builder
	for _, k := range buckets {
		switch {
		case k.Attempts == 0:
			b.WriteByte('.')
		case k.Failures == 0:
			b.WriteByte('_')
		default:
			b.WriteByte('x')
		}
	}
	return b.String()
}

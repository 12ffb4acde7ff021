package secrets

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hookd/hookd/internal/webhook"
)

// What a backend does with deliveries whose webhook's secrets cannot be
// opened (their key is not configured), written once for both: such a
// delivery is never handed out, since sending it would sign with the
// wrong secret, but given back to the queue so that nothing is lost and
// adding the key back is enough.

// Releaser gives deliveries back to the queue (webhook.Store's
// DeliveryRelease).
type Releaser interface {
	DeliveryRelease(ctx context.Context, p webhook.ReleaseParams) error
}

// Claimed is what DeliveryClaim returns given the tasks it could open and
// the refs of those it could not (failed: the first error). With none
// unreadable, the tasks. Otherwise nothing is sent: every claimed
// delivery is given back, the unreadable ones due when their lease would
// have ended (so a missing key does not spin the dispatcher) and the
// others due now, and the error, naming the key, is what the dispatcher
// logs.
func Claimed(ctx context.Context, r Releaser, p webhook.ClaimParams, tasks []*webhook.Task, unreadable []webhook.DeliveryRef, failed error) ([]*webhook.Task, error) {
	if len(unreadable) == 0 {
		return tasks, nil
	}
	good := make([]webhook.DeliveryRef, 0, len(tasks))
	for _, t := range tasks {
		good = append(good, t.Ref())
	}
	// Give them back even if ctx is done: the deliveries must not stay
	// leased for nothing.
	release := context.WithoutCancel(ctx)
	errs := []error{fmt.Errorf("%d of %d claimed deliveries cannot be signed: %w", len(unreadable), len(tasks)+len(unreadable), failed)}
	if len(good) > 0 {
		errs = append(errs, r.DeliveryRelease(release, webhook.ReleaseParams{Refs: good, Now: p.Now}))
	}
	errs = append(errs, r.DeliveryRelease(release, webhook.ReleaseParams{Refs: unreadable, Now: p.Now, After: p.LeaseUntil.Sub(p.Now)}))
	return nil, errors.Join(errs...)
}

// Receipts is what EventsCreate returns given the committed receipts:
// the leased deliveries of webhooks whose secrets could not be opened
// (Unreadable) are left out of the receipts' Tasks (the events are committed: this is
// no reason to fail the intake) and given back to the queue, due now (on
// a backend running on the caller's clock, at their creation, as if they
// had never been leased), so that DeliveryClaim meets them at once and
// reports why they cannot be sent.
func Receipts(ctx context.Context, r Releaser, receipts []webhook.EventReceipt) []webhook.EventReceipt {
	var bad []webhook.DeliveryRef
	var due time.Time
	for i := range receipts {
		tasks := receipts[i].Tasks[:0]
		for _, t := range receipts[i].Tasks {
			if t.Webhook.Unreadable != nil {
				bad = append(bad, t.Ref())
				due = t.Delivery.CreatedAt
				continue
			}
			tasks = append(tasks, t)
		}
		receipts[i].Tasks = tasks
	}
	if len(bad) > 0 {
		// If this fails, the leases expire and the same happens later.
		_ = r.DeliveryRelease(context.WithoutCancel(ctx), webhook.ReleaseParams{Refs: bad, Now: due})
	}
	return receipts
}

package storetest

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/webhook"
)

// The audit trail: entries are written with the change they record (both
// or neither), listed newest first a page at a time, per organization,
// and never hold a secret.

var (
	byToken = webhook.Actor{Kind: webhook.ActorToken, ID: "0190a6d2-0000-7000-8000-00000000000a"}
	byCLI   = webhook.Actor{Kind: webhook.ActorCLI, ID: "root"}
)

// Secrets the audit trail must never hold.
const (
	auditSecret    = "s3cret-value-never-audited"
	auditNewSecret = "n3w-secret-never-audited"
	auditPassword  = "pa55word-never-audited"
)

func auditList(t *testing.T, s webhook.Store, p webhook.AuditListParams) []*webhook.AuditEntry {
	t.Helper()
	es, err := s.AuditList(context.Background(), p)
	if err != nil {
		t.Fatalf("AuditList: %v", err)
	}
	if es == nil {
		t.Fatal("AuditList returned nil, want a non-nil slice")
	}
	return es
}

func allAudit(t *testing.T, s webhook.Store, org uuid.UUID) []*webhook.AuditEntry {
	t.Helper()
	return auditList(t, s, webhook.AuditListParams{OrganizationID: org})
}

// wantNoSecret fails if anything the store returns for org holds one of
// the secrets.
func wantNoSecret(t *testing.T, es []*webhook.AuditEntry) {
	t.Helper()
	b, err := json.Marshal(es)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{auditSecret, auditNewSecret, auditPassword} {
		if strings.Contains(string(b), secret) {
			t.Fatalf("the audit trail holds the secret %q: %s", secret, b)
		}
	}
}

func changeOf(e *webhook.AuditEntry, field string) *webhook.Change {
	for i := range e.Changes {
		if e.Changes[i].Field == field {
			return &e.Changes[i]
		}
	}
	return nil
}

func testAuditWebhook(t *testing.T, s webhook.Store) {
	ctx := context.Background()
	org := newID(t)
	w := newWebhook(t, org)
	w.TargetURL = "https://deploy:" + auditPassword + "@example.com/hook"
	w.TargetSecret = auditSecret
	created := webhook.WebhookAudit(byToken, base, nil, w)
	if err := s.WebhookCreate(ctx, w, 0, created); err != nil {
		t.Fatal(err)
	}
	if created.ID == uuid.Nil || created.OrganizationID != org || created.ResourceID != w.ID {
		t.Fatalf("the store did not fill the entry in: %+v", created)
	}

	// An edit: new secret, new description, the URL's password changed.
	edited := *w
	edited.UpdatedAt = base.Add(time.Minute)
	edited.TargetSecret = auditNewSecret
	edited.Description = "changed"
	edited.TargetURL = "https://deploy:" + auditPassword + "-2@example.com/hook"
	updated := webhook.WebhookAudit(byToken, edited.UpdatedAt, w, &edited)
	if err := replaceWebhook(ctx, s, &edited, updated); err != nil {
		t.Fatal(err)
	}
	off := edited
	off.UpdatedAt = base.Add(2 * time.Minute)
	off.Enabled = false
	disabled := webhook.WebhookAudit(byToken, off.UpdatedAt, &edited, &off)
	if err := replaceWebhook(ctx, s, &off, disabled); err != nil {
		t.Fatal(err)
	}
	deleted := webhook.WebhookAudit(byCLI, base.Add(3*time.Minute), &off, nil)
	if err := deleteWebhook(ctx, s, org, w.ID, deleted); err != nil {
		t.Fatal(err)
	}

	got := allAudit(t, s, org)
	wantEqual(t, "audit trail, newest first", got, []*webhook.AuditEntry{deleted, disabled, updated, created})
	wantNoSecret(t, got)

	actions := []webhook.AuditAction{got[3].Action, got[2].Action, got[1].Action, got[0].Action}
	wantEqual(t, "actions", actions, []webhook.AuditAction{webhook.AuditWebhookCreated, webhook.AuditWebhookUpdated,
		webhook.AuditWebhookDisabled, webhook.AuditWebhookDeleted})
	if c := changeOf(got[2], "target_secret"); c == nil || c.Secret != webhook.SecretChanged || c.Before != nil || c.After != nil {
		t.Fatalf("the edit's target_secret change = %+v, want only \"changed\"", c)
	}
	if c := changeOf(got[2], "target_url"); c == nil || c.Secret != webhook.SecretChanged || string(c.Before) != string(c.After) {
		t.Fatalf("the edit's target_url change = %+v, want the masked URL and \"changed\"", c)
	}
	if c := changeOf(got[2], "description"); c == nil || string(c.Before) != `"a webhook"` || string(c.After) != `"changed"` {
		t.Fatalf("the edit's description change = %+v", c)
	}
	if len(got[1].Changes) != 1 || got[1].Changes[0].Field != "enabled" {
		t.Fatalf("disabling changed %+v, want only enabled", got[1].Changes)
	}
	if c := changeOf(got[3], "target_secret"); c == nil || c.Secret != webhook.SecretSet {
		t.Fatalf("the creation's target_secret change = %+v, want \"set\"", c)
	}
	if got[0].Actor != byCLI || got[0].ResourceName != webhook.RedactedURL(off.TargetURL) {
		t.Fatalf("the deletion's entry = %+v", got[0])
	}
}

// testAuditAtomic checks that a change and its entry are stored together
// or not at all: a change that fails records nothing, and an entry that
// cannot be stored (its ID taken) undoes the change.
// testAuditOddActor: a JWT's sub is whatever its issuer put there; one
// holding NUL or invalid UTF-8 is stored as every backend stores text it
// cannot refuse (webhook.StoredText), not refused and not kept raw, so
// the change it signs is recorded and reads back the same on each.
func testAuditOddActor(t *testing.T, s webhook.Store) {
	ctx := context.Background()
	org := newID(t)
	w := newWebhook(t, org)
	if err := s.WebhookCreate(ctx, w, 0, webhook.WebhookAudit(webhook.Actor{Kind: webhook.ActorJWT, ID: "sub\x00\xff"}, base, nil, w)); err != nil {
		t.Fatal(err)
	}
	es := allAudit(t, s, org)
	if len(es) != 1 {
		t.Fatalf("%d audit entries, want 1", len(es))
	}
	if want := "sub\uFFFD\uFFFD"; es[0].Actor.ID != want {
		t.Fatalf("recorded as by %q, want %q", es[0].Actor.ID, want)
	}
}

func testAuditAtomic(t *testing.T, s webhook.Store) {
	ctx := context.Background()
	org := newID(t)
	w := newWebhook(t, org)
	first := webhook.WebhookAudit(byToken, base, nil, w)
	if err := s.WebhookCreate(ctx, w, 0, first); err != nil {
		t.Fatal(err)
	}
	taken := first.ID
	entry := func() *webhook.AuditEntry {
		e := webhook.WebhookAudit(byToken, base, nil, w)
		e.ID = taken
		return e
	}

	// Changes that fail record nothing.
	dup := *w
	wantCode(t, s.WebhookCreate(ctx, &dup, 0, webhook.WebhookAudit(byToken, base, nil, &dup)), webhook.EConflict)
	missing := *w
	missing.ID = newID(t)
	wantCode(t, replaceWebhook(ctx, s, &missing, webhook.WebhookAudit(byToken, base, w, &missing)), webhook.ENotFound)
	wantCode(t, deleteWebhook(ctx, s, org, missing.ID, webhook.WebhookAudit(byToken, base, &missing, nil)), webhook.ENotFound)
	foreign := *w
	foreign.OrganizationID = newID(t)
	foreign.Description = "hijacked"
	wantCode(t, replaceWebhook(ctx, s, &foreign, webhook.WebhookAudit(byToken, base, w, &foreign)), webhook.ENotFound)
	wantCode(t, s.TokenRevoke(ctx, newID(t), base, webhook.TokenAudit(byCLI, base, webhook.AuditTokenRevoked, &webhook.Token{})), webhook.ENotFound)
	if got := allAudit(t, s, org); len(got) != 1 || got[0].ID != taken {
		t.Fatalf("failed changes left entries: %+v", got)
	}
	if got := allAudit(t, s, foreign.OrganizationID); len(got) != 0 {
		t.Fatalf("a refused change to another organization's webhook left entries there: %+v", got)
	}

	// An entry that cannot be stored undoes its change.
	other := newWebhook(t, org)
	wantCode(t, s.WebhookCreate(ctx, other, 0, entry()), webhook.EConflict)
	_, err := s.WebhookGet(ctx, org, other.ID)
	wantCode(t, err, webhook.ENotFound)

	edited := *w
	edited.Description = "not stored"
	wantCode(t, replaceWebhook(ctx, s, &edited, entry()), webhook.EConflict)
	wantEqual(t, "webhook after a failed audited edit", getWebhook(t, s, org, w.ID), w)

	wantCode(t, deleteWebhook(ctx, s, org, w.ID, entry()), webhook.EConflict)
	getWebhook(t, s, org, w.ID)

	tok := newToken(t, org, base)
	wantCode(t, s.TokenCreate(ctx, tok, entry()), webhook.EConflict)
	_, err = s.TokenGetByHash(ctx, tok.Hash)
	wantCode(t, err, webhook.ENotFound)
	if err := s.TokenCreate(ctx, tok, nil); err != nil {
		t.Fatal(err)
	}
	wantCode(t, s.TokenRevoke(ctx, tok.ID, base, entry()), webhook.EConflict)
	if _, err := s.TokenGetByHash(ctx, tok.Hash); err != nil {
		t.Fatalf("the token was revoked though its entry was not stored: %v", err)
	}

	if got := allAudit(t, s, org); len(got) != 1 || got[0].ID != taken {
		t.Fatalf("after refused entries, the trail is %+v, want the first entry alone", got)
	}
}

func testAuditToken(t *testing.T, s webhook.Store) {
	ctx := context.Background()
	org := newID(t)
	tok := newToken(t, org, base)
	created := webhook.TokenAudit(byCLI, base, webhook.AuditTokenCreated, tok)
	if err := s.TokenCreate(ctx, tok, created); err != nil {
		t.Fatal(err)
	}
	// The CLI revokes by id alone: the store files the entry under the
	// token's organization and names it.
	revoked := webhook.TokenAudit(byCLI, base.Add(time.Minute), webhook.AuditTokenRevoked, &webhook.Token{ID: tok.ID})
	if err := s.TokenRevoke(ctx, tok.ID, base.Add(time.Minute), revoked); err != nil {
		t.Fatal(err)
	}
	if revoked.OrganizationID != org || revoked.ResourceName != tok.Name {
		t.Fatalf("revocation entry = %+v, want the token's organization and name", revoked)
	}
	// Revoking again changes nothing, so records nothing.
	again := webhook.TokenAudit(byCLI, base.Add(2*time.Minute), webhook.AuditTokenRevoked, &webhook.Token{ID: tok.ID})
	if err := s.TokenRevoke(ctx, tok.ID, base.Add(2*time.Minute), again); err != nil {
		t.Fatal(err)
	}
	got := allAudit(t, s, org)
	wantEqual(t, "token entries", got, []*webhook.AuditEntry{revoked, created})
	if got[1].ResourceID != tok.ID || string(got[1].Changes[0].After) != `"ci"` {
		t.Fatalf("creation entry = %+v", got[1])
	}
	// Nothing derived from the token's hash is kept.
	b, _ := json.Marshal(got)
	if strings.Contains(string(b), string(tok.Hash)) {
		t.Fatalf("the audit trail holds the token's hash: %s", b)
	}
}

func testAuditList(t *testing.T, s webhook.Store) {
	ctx := context.Background()
	orgA, orgB := newID(t), newID(t)
	w := createWebhook(t, s, newWebhook(t, orgA))
	var want []*webhook.AuditEntry
	prev := *w
	for i := range 5 {
		next := prev
		next.Description = strings.Repeat("x", i+1)
		next.UpdatedAt = base.Add(time.Duration(i) * time.Second)
		e := webhook.WebhookAudit(byToken, next.UpdatedAt, &prev, &next)
		if err := replaceWebhook(ctx, s, &next, e); err != nil {
			t.Fatal(err)
		}
		want = append([]*webhook.AuditEntry{e}, want...)
		prev = next
	}
	other := newWebhook(t, orgB)
	if err := s.WebhookCreate(ctx, other, 0, webhook.WebhookAudit(byToken, base, nil, other)); err != nil {
		t.Fatal(err)
	}

	wantEqual(t, "whole list", allAudit(t, s, orgA), want)
	// Pages of two, following the cursor, end to end.
	var paged []*webhook.AuditEntry
	p := webhook.AuditListParams{OrganizationID: orgA, Limit: 2}
	for range 10 {
		page := auditList(t, s, p)
		if len(page) > 2 {
			t.Fatalf("a page of %d entries with Limit 2", len(page))
		}
		paged = append(paged, page...)
		if len(page) < 2 {
			break
		}
		p.Before = page[len(page)-1].ID
	}
	wantEqual(t, "pages", paged, want)

	// Organizations never see each other's entries.
	b := allAudit(t, s, orgB)
	if len(b) != 1 || b[0].OrganizationID != orgB || b[0].ResourceID != other.ID {
		t.Fatalf("organization B's trail = %+v", b)
	}
	for _, e := range allAudit(t, s, orgA) {
		if e.OrganizationID != orgA {
			t.Fatalf("organization A's trail holds %+v", e)
		}
	}
	if got := allAudit(t, s, newID(t)); len(got) != 0 {
		t.Fatalf("an organization with no change has %d entries", len(got))
	}
	// A cursor from organization A gives B nothing of A's.
	for _, e := range auditList(t, s, webhook.AuditListParams{OrganizationID: orgB, Before: uuid.Max}) {
		if e.OrganizationID != orgB {
			t.Fatalf("a cursor crossed organizations: %+v", e)
		}
	}
}

// testAuditDisabledByHookd checks that hookd disabling a webhook after an
// attempt is audited in the same call, once, as hookd, with the reason.
func testAuditDisabledByHookd(t *testing.T, s webhook.Store) {
	w, tasks := claimN(t, s, 2, nil)
	org := w.OrganizationID
	a1 := newAttempt(t, &tasks[0].Delivery, 1, 410, base.Add(time.Second))
	a2 := newAttempt(t, &tasks[1].Delivery, 1, 410, base.Add(2*time.Second))
	// Both say to disable it; the second finds it disabled already.
	complete(t, s,
		webhook.Outcome{Attempt: a1, Status: webhook.DeliveryFailed, DisableReason: "the target answered 410 Gone (first)",
			WebhookUpdatedAt: tasks[0].Webhook.UpdatedAt},
		webhook.Outcome{Attempt: a2, Status: webhook.DeliveryFailed, DisableReason: "the target answered 410 Gone (second)",
			WebhookUpdatedAt: tasks[1].Webhook.UpdatedAt})

	if got := getWebhook(t, s, org, w.ID); got.Enabled || got.DisabledReason != "the target answered 410 Gone (first)" {
		t.Fatalf("webhook after two disabling outcomes: enabled=%v reason=%q, want disabled with the first reason", got.Enabled, got.DisabledReason)
	}
	got := allAudit(t, s, org)
	if len(got) != 1 {
		t.Fatalf("got %d entries for hookd disabling the webhook, want 1: %+v", len(got), got)
	}
	want := webhook.DisabledByHookdAudit(a1.CreatedAt.Add(a1.Duration), a1.TargetURL, "the target answered 410 Gone (first)")
	want.ID, want.OrganizationID, want.ResourceID = got[0].ID, org, w.ID
	wantEqual(t, "hookd's entry", got[0], want)

	// A person enabling it again is an ordinary entry, which clears the reason.
	before := getWebhook(t, s, org, w.ID)
	after := *before
	after.Apply(webhook.Spec{Kind: after.Kind, TargetURL: after.TargetURL, Description: after.Description, Enabled: ptr(true),
		Events: after.Events, ProjectNamesFilter: after.ProjectNamesFilter, EnvironmentTypesFilter: after.EnvironmentTypesFilter}, base.Add(time.Hour))
	e := webhook.WebhookAudit(byToken, base.Add(time.Hour), before, &after)
	if err := replaceWebhook(context.Background(), s, &after, e); err != nil {
		t.Fatal(err)
	}
	got = allAudit(t, s, org)
	if len(got) != 2 || got[0].Action != webhook.AuditWebhookEnabled || changeOf(got[0], "disabled_reason") == nil {
		t.Fatalf("after enabling again, the trail is %+v", got)
	}
}

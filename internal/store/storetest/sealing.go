package storetest

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hookd/hookd/internal/secrets"
	"github.com/hookd/hookd/internal/webhook"
)

// Secrets are sealed and opened in each backend's row codec, with the
// keyring given to its Open: these tests hold every backend to it. The
// suite's stores are opened with a key (Keys), so a method that handed
// out a row as stored would hand out "enc:v1:…".

// sealedPrefix starts every value a Keyring seals.
const sealedPrefix = "enc:"

// wantNoSealed fails t if any string reachable from v (through pointers,
// structs, slices and maps) is a sealed value: it looks at every field,
// so a field sealed tomorrow is covered too.
func wantNoSealed(t *testing.T, what string, v any) {
	t.Helper()
	var walk func(path string, v reflect.Value)
	walk = func(path string, v reflect.Value) {
		switch v.Kind() {
		case reflect.Pointer, reflect.Interface:
			if !v.IsNil() {
				walk(path, v.Elem())
			}
		case reflect.Struct:
			for i := range v.NumField() {
				if v.Type().Field(i).IsExported() {
					walk(path+"."+v.Type().Field(i).Name, v.Field(i))
				}
			}
		case reflect.Slice, reflect.Array:
			for i := range v.Len() {
				walk(path, v.Index(i))
			}
		case reflect.Map:
			for it := v.MapRange(); it.Next(); {
				walk(path, it.Value())
			}
		case reflect.String:
			if strings.HasPrefix(v.String(), sealedPrefix) {
				t.Errorf("%s: %s is handed out sealed", what, path)
			}
		}
	}
	walk(reflect.TypeOf(v).String(), reflect.ValueOf(v))
}

// secretsOf are the sealed fields of w, as the caller gave them.
func secretsOf(w *webhook.Webhook) [3]string {
	return [3]string{w.TargetURL, w.TargetSecret, w.PreviousSecret}
}

// testSecretsOpened: every method that returns webhooks, tasks or
// sources, and every callback given a webhook, sees the secrets in
// plaintext.
func testSecretsOpened(t *testing.T, s webhook.Store) {
	ctx := context.Background()
	org := newID(t)
	w := newWebhook(t, org)
	w.TargetURL = "https://deploy:pa55word@example.com/hook?api_token=t0ken"
	w.PreviousSecret, w.SecretRotatedAt = "old-s3cret", base
	want := secretsOf(w)
	if err := s.WebhookCreate(ctx, w, 0, webhook.WebhookAudit(byToken, base, nil, w)); err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "the caller's webhook after WebhookCreate", secretsOf(w), want)
	got := getWebhook(t, s, org, w.ID)
	wantNoSealed(t, "WebhookGet", got)
	wantEqual(t, "WebhookGet", secretsOf(got), want)
	list, err := s.WebhookList(ctx, org)
	if err != nil || len(list) != 1 {
		t.Fatalf("WebhookList = %v, %v", list, err)
	}
	wantNoSealed(t, "WebhookList", list)
	wantEqual(t, "WebhookList", secretsOf(list[0]), want)

	updated, err := s.WebhookUpdate(ctx, webhook.WebhookChange{OrganizationID: org, ID: w.ID,
		Apply: func(cur *webhook.Webhook) (*webhook.AuditEntry, error) {
			wantNoSealed(t, "WebhookUpdate's Apply", cur)
			wantEqual(t, "WebhookUpdate's Apply", secretsOf(cur), want)
			before := *cur
			cur.Description, cur.UpdatedAt = "edited", base.Add(time.Second)
			return webhook.WebhookAudit(byToken, base, &before, cur), nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	wantNoSealed(t, "WebhookUpdate", updated)
	wantEqual(t, "WebhookUpdate", secretsOf(updated), want)
	wantEqual(t, "WebhookGet after an edit", secretsOf(getWebhook(t, s, org, w.ID)), want)

	// Leased at intake, and claimed.
	until := base.Add(time.Minute)
	rs, err := s.EventsCreate(ctx, []*webhook.Event{newEvent(t, org, base)}, webhook.Lease{Now: base, Until: until, Limit: 10})
	if err != nil || len(rs) != 1 || len(rs[0].Tasks) != 1 {
		t.Fatalf("EventsCreate = %+v, %v; want one task", rs, err)
	}
	wantNoSealed(t, "EventsCreate", rs)
	wantEqual(t, "EventsCreate's task", secretsOf(&rs[0].Tasks[0].Webhook), want)
	createEvents(t, s, newEvent(t, org, base.Add(time.Second)))
	tasks := claim(t, s, webhook.ClaimParams{Now: base.Add(time.Second), LeaseUntil: until, Limit: 10})
	if len(tasks) != 1 {
		t.Fatalf("claimed %d tasks, want 1", len(tasks))
	}
	wantNoSealed(t, "DeliveryClaim", tasks)
	wantEqual(t, "DeliveryClaim's task", secretsOf(&tasks[0].Webhook), want)

	src := newSource(t, org, "gh")
	if err := s.SourceCreate(ctx, src, 0, webhook.SourceAudit(byToken, base, nil, src)); err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "the caller's source after SourceCreate", src.Secret, auditSecret)
	ref := webhook.SourceRef{OrganizationID: org, ID: src.ID}
	gotSrc := getSource(t, s, ref)
	wantNoSealed(t, "SourceGet", gotSrc)
	wantEqual(t, "SourceGet", gotSrc.Secret, auditSecret)
	updatedSrc, err := s.SourceUpdate(ctx, webhook.SourceChange{Ref: ref, Apply: func(cur *webhook.Source) (*webhook.AuditEntry, error) {
		wantNoSealed(t, "SourceUpdate's Apply", cur)
		wantEqual(t, "SourceUpdate's Apply", cur.Secret, auditSecret)
		cur.Name, cur.UpdatedAt = "renamed", base.Add(time.Second)
		return nil, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "the source SourceUpdate returns", updatedSrc.Secret, auditSecret)
	srcs, err := s.SourceList(ctx, org)
	if err != nil || len(srcs) != 1 {
		t.Fatalf("SourceList = %v, %v", srcs, err)
	}
	wantNoSealed(t, "SourceList", srcs)
	wantEqual(t, "SourceList", srcs[0].Secret, auditSecret)

	if err := s.WebhookDelete(ctx, webhook.WebhookChange{OrganizationID: org, ID: w.ID,
		Apply: func(cur *webhook.Webhook) (*webhook.AuditEntry, error) {
			wantNoSealed(t, "WebhookDelete's Apply", cur)
			wantEqual(t, "WebhookDelete's Apply", secretsOf(cur), want)
			return webhook.WebhookAudit(byToken, base, cur, nil), nil
		}}); err != nil {
		t.Fatal(err)
	}
	wantNoSealed(t, "AuditList", auditList(t, s, webhook.AuditListParams{OrganizationID: org}))
}

// RunSealedAtRest checks s, an empty store opened with keys, writes every
// secret sealed: raw returns, read straight from the tables, every stored
// target URL, target secret, previous secret and source secret. Values
// written before encryption (in clear) still read, and are sealed when
// written again.
func RunSealedAtRest(t *testing.T, s webhook.Store, keys *secrets.Keyring, raw func(t *testing.T) []string) {
	ctx := context.Background()
	org := newID(t)
	w := newWebhook(t, org)
	w.TargetURL = "https://deploy:pa55word@example.com/hook"
	w.PreviousSecret, w.SecretRotatedAt = "old-s3cret", base
	createWebhook(t, s, w)
	noSecret := newWebhook(t, org)
	noSecret.TargetSecret = "" // no secret stays no secret; its URL is still sealed
	createWebhook(t, s, noSecret)
	src := newSource(t, org, "gh")
	if err := s.SourceCreate(ctx, src, 0, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.WebhookUpdate(ctx, webhook.WebhookChange{OrganizationID: org, ID: w.ID,
		Apply: func(cur *webhook.Webhook) (*webhook.AuditEntry, error) {
			cur.TargetSecret = "new-s3cret"
			return nil, nil
		}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SourceUpdate(ctx, webhook.SourceChange{Ref: webhook.SourceRef{OrganizationID: org, ID: src.ID},
		Apply: func(cur *webhook.Source) (*webhook.AuditEntry, error) {
			cur.Secret = "new-source-s3cret"
			return nil, nil
		}}); err != nil {
		t.Fatal(err)
	}
	values := raw(t)
	if len(values) != 7 {
		t.Fatalf("raw = %d values, want 7 (3 per webhook, 1 per source)", len(values))
	}
	empty := 0
	for i, v := range values {
		if v == "" {
			empty++
			continue
		}
		if !strings.HasPrefix(v, "enc:v1:"+keys.NewestID()+":") {
			t.Errorf("stored value %d is not sealed with the newest key", i)
		}
		for _, plain := range []string{"pa55word", "s3cret", "example.com"} {
			if strings.Contains(v, plain) {
				t.Errorf("a stored value holds %q in clear", plain)
			}
		}
	}
	if empty != 2 { // noSecret's secret and previous secret
		t.Errorf("%d stored values are empty, want 2", empty)
	}
}

// RunUnreadable checks what a store does with secrets whose key it does
// not have: a and b are open on one empty database, b with another key
// than a. b reads and lists such a webhook or source with its sealed
// fields empty and marked Unreadable; fails to edit it, naming the
// missing key and no secret; still deletes it; accepts events for such a
// webhook without handing out its deliveries; and gives back the
// deliveries it claims, so a, with the key, sends them later.
func RunUnreadable(t *testing.T, a, b webhook.Store) {
	ctx := context.Background()
	org := newID(t)
	w := createWebhook(t, a, newWebhook(t, org))
	gone := createWebhook(t, a, newWebhook(t, newID(t)))
	src := newSource(t, org, "gh")
	if err := a.SourceCreate(ctx, src, 0, nil); err != nil {
		t.Fatal(err)
	}
	// The error says whether a webhook's or a source's secret could not
	// be opened (what names the store method), and holds no secret.
	wantUnknownKey := func(what string, err error) {
		t.Helper()
		kind := "webhook"
		if strings.HasPrefix(what, "Source") {
			kind = "source"
		}
		if !errors.Is(err, secrets.ErrUnknownKey) {
			t.Errorf("%s = %v, want ErrUnknownKey", what, err)
		} else if strings.Contains(err.Error(), w.TargetSecret) || strings.Contains(err.Error(), src.Secret) {
			t.Errorf("%s: the error holds a secret: %v", what, err)
		} else if !strings.Contains(err.Error(), kind+" ") {
			t.Errorf("%s: the error does not say it is a %s's secret: %v", what, kind, err)
		}
	}
	// Read and listed, marked, the sealed fields empty and the rest as
	// stored; the readable ones beside it as they are.
	readable := createWebhook(t, b, newWebhook(t, org))
	wantUnreadable := func(what string, got *webhook.Webhook) {
		t.Helper()
		wantUnknownKey(what+": its Unreadable", got.Unreadable)
		wantNoSealed(t, what, got)
		wantEqual(t, what+": the sealed fields", secretsOf(got), [3]string{})
		wantEqual(t, what+": the description", got.Description, w.Description)
		wantEqual(t, what+": the events", got.Events, w.Events)
		wantEqual(t, what+": the ETag", got.ETag(), w.ETag())
	}
	got, err := b.WebhookGet(ctx, org, w.ID)
	if err != nil {
		t.Fatalf("WebhookGet of an unreadable webhook: %v", err)
	}
	wantUnreadable("WebhookGet", got)
	list, err := b.WebhookList(ctx, org)
	if err != nil || len(list) != 2 {
		t.Fatalf("WebhookList = %d webhooks, %v; want the unreadable one and the readable one", len(list), err)
	}
	wantUnreadable("WebhookList", list[0])
	if list[1].Unreadable != nil || list[1].TargetURL != readable.TargetURL {
		t.Errorf("WebhookList: the readable webhook is Unreadable %v, target %q; want %q", list[1].Unreadable, list[1].TargetURL, readable.TargetURL)
	}
	if got, err := a.WebhookGet(ctx, org, w.ID); err != nil || got.Unreadable != nil || got.TargetURL != w.TargetURL {
		t.Errorf("WebhookGet with the key: %v; want it whole", err)
	}
	if err := b.WebhookDelete(ctx, webhook.WebhookChange{OrganizationID: org, ID: readable.ID,
		Apply: func(*webhook.Webhook) (*webhook.AuditEntry, error) { return nil, nil }}); err != nil {
		t.Fatal(err)
	}
	_, err = b.WebhookUpdate(ctx, webhook.WebhookChange{OrganizationID: org, ID: w.ID,
		Apply: func(cur *webhook.Webhook) (*webhook.AuditEntry, error) {
			t.Error("WebhookUpdate ran Apply on a webhook it cannot open")
			return nil, nil
		}})
	wantUnknownKey("WebhookUpdate", err)
	wantUnreadableSource := func(what string, got *webhook.Source) {
		t.Helper()
		wantUnknownKey(what+": its Unreadable", got.Unreadable)
		if got.Secret != "" {
			t.Errorf("%s: the secret is %d bytes; want it empty", what, len(got.Secret))
		}
		wantEqual(t, what+": the name", got.Name, src.Name)
		wantEqual(t, what+": the ETag", got.ETag(), src.ETag())
	}
	gotSrc, err := b.SourceGet(ctx, webhook.SourceRef{OrganizationID: org, ID: src.ID})
	if err != nil {
		t.Fatalf("SourceGet of an unreadable source: %v", err)
	}
	wantUnreadableSource("SourceGet", gotSrc)
	srcs, err := b.SourceList(ctx, org)
	if err != nil || len(srcs) != 1 {
		t.Fatalf("SourceList = %d sources, %v; want the unreadable one", len(srcs), err)
	}
	wantUnreadableSource("SourceList", srcs[0])
	if got, err := a.SourceGet(ctx, webhook.SourceRef{OrganizationID: org, ID: src.ID}); err != nil || got.Unreadable != nil || got.Secret != src.Secret {
		t.Errorf("SourceGet with the key: %v; want it whole", err)
	}

	// A webhook whose key is gone can be deleted: Apply sees its
	// unreadable fields cleared, never sealed.
	if err := b.WebhookDelete(ctx, webhook.WebhookChange{OrganizationID: gone.OrganizationID, ID: gone.ID,
		Apply: func(cur *webhook.Webhook) (*webhook.AuditEntry, error) {
			wantNoSealed(t, "WebhookDelete's Apply", cur)
			wantEqual(t, "WebhookDelete's Apply", secretsOf(cur), [3]string{})
			return nil, nil
		}}); err != nil {
		t.Fatalf("WebhookDelete of an unreadable webhook: %v", err)
	}

	// So can a source, its secret cleared for Apply; but it is not
	// edited: the edit would write its secret back empty.
	ref := webhook.SourceRef{OrganizationID: org, ID: src.ID}
	_, err = b.SourceUpdate(ctx, webhook.SourceChange{Ref: ref, Apply: func(*webhook.Source) (*webhook.AuditEntry, error) {
		t.Error("SourceUpdate ran Apply on a source it cannot open")
		return nil, nil
	}})
	wantUnknownKey("SourceUpdate", err)
	applied := false
	if err := b.SourceDelete(ctx, webhook.SourceChange{Ref: ref, Apply: func(cur *webhook.Source) (*webhook.AuditEntry, error) {
		applied = true
		wantNoSealed(t, "SourceDelete's Apply", cur)
		wantEqual(t, "SourceDelete's Apply: the secret", cur.Secret, "")
		wantEqual(t, "SourceDelete's Apply: the name", cur.Name, src.Name)
		return nil, nil
	}}); err != nil {
		t.Fatalf("SourceDelete of an unreadable source: %v", err)
	}
	if !applied {
		t.Error("SourceDelete did not run Apply")
	}
	if _, err := a.SourceGet(ctx, ref); webhook.ErrorCode(err) != webhook.ENotFound {
		t.Errorf("SourceGet after SourceDelete = %v, want NotFound", err)
	}

	// Accepted, but not handed out: given back at once, so that a claim
	// reports the missing key now.
	until := base.Add(time.Minute)
	rs, err := b.EventsCreate(ctx, []*webhook.Event{newEvent(t, org, base)}, webhook.Lease{Now: base, Until: until, Limit: 10})
	if err != nil || len(rs) != 1 || rs[0].Deliveries != 1 || len(rs[0].Tasks) != 0 {
		t.Fatalf("EventsCreate = %+v, %v; want the event stored with its delivery, no task", rs, err)
	}
	claimAt := webhook.ClaimParams{Now: base, LeaseUntil: until, Limit: 10}
	_, err = b.DeliveryClaim(ctx, claimAt)
	wantUnknownKey("DeliveryClaim", err)
	// Given back until the lease would have ended, then claimable again,
	// with no attempt counted.
	if tasks := claim(t, a, claimAt); len(tasks) != 0 {
		t.Fatalf("claimed %d right after the failed claim, want none before its lease ends", len(tasks))
	}
	tasks := claim(t, a, webhook.ClaimParams{Now: until, LeaseUntil: until.Add(time.Minute), Limit: 10})
	if len(tasks) != 1 || tasks[0].Delivery.ID != rs[0].DeliveryIDs[0] {
		t.Fatalf("claimed %d with the key, want the delivery given back", len(tasks))
	}
	wantEqual(t, "the given-back task's webhook", secretsOf(&tasks[0].Webhook), secretsOf(w))
	wantEqual(t, "attempts after giving back", tasks[0].Delivery.Attempts, 0)
}

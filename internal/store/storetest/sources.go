package storetest

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/webhook"
)

// Sources: stored and read back field for field, per organization, with
// an audit entry written in the same transaction as each change.

func newSource(t *testing.T, org uuid.UUID, name string) *webhook.Source {
	t.Helper()
	return &webhook.Source{
		ID:             newID(t),
		OrganizationID: org,
		CreatedAt:      base,
		UpdatedAt:      base,
		Kind:           webhook.SourceGitHub,
		Name:           name,
		Secret:         auditSecret,
		EnvironmentTypes: []webhook.EnvironmentRule{
			{Pattern: "prod*", Type: webhook.ModeProduction},
			{Pattern: "Staging", Type: webhook.ModeStaging},
		},
	}
}

func getSource(t *testing.T, s webhook.Store, ref webhook.SourceRef) *webhook.Source {
	t.Helper()
	got, err := s.SourceGet(context.Background(), ref)
	if err != nil {
		t.Fatalf("SourceGet: %v", err)
	}
	return got
}

func testSourceRoundTrip(t *testing.T, s webhook.Store) {
	ctx := context.Background()
	org := newID(t)
	src := newSource(t, org, "github: api")
	src.OrganizationID = org
	if err := s.SourceCreate(ctx, src, 0, webhook.SourceAudit(byToken, base, nil, src)); err != nil {
		t.Fatal(err)
	}
	ref := webhook.SourceRef{OrganizationID: org, ID: src.ID}
	if got := getSource(t, s, ref); !reflect.DeepEqual(got, src) {
		t.Fatalf("SourceGet = %+v, want %+v", got, src)
	}
	if err := s.SourceCreate(ctx, src, 0, nil); webhook.ErrorCode(err) != webhook.EConflict {
		t.Errorf("a second create with the same id: %v, want a conflict", err)
	}

	// Another organization sees nothing of it.
	other := newID(t)
	if _, err := s.SourceGet(ctx, webhook.SourceRef{OrganizationID: other, ID: src.ID}); webhook.ErrorCode(err) != webhook.ENotFound {
		t.Errorf("SourceGet from another organization: %v, want not found", err)
	}
	if list, err := s.SourceList(ctx, other); err != nil || len(list) != 0 {
		t.Errorf("SourceList of another organization = %v, %v; want empty", list, err)
	}

	// Update replaces every field but the creation time, and audits.
	before := *src
	got, err := s.SourceUpdate(ctx, webhook.SourceChange{Ref: ref, Apply: func(cur *webhook.Source) (*webhook.AuditEntry, error) {
		if !reflect.DeepEqual(cur, &before) {
			t.Errorf("SourceUpdate's Apply sees %+v, want the stored %+v", cur, &before)
		}
		cur.Kind, cur.Name, cur.Secret = webhook.SourceFlux, "flux: prod", auditNewSecret
		cur.EnvironmentTypes = []webhook.EnvironmentRule{}
		cur.UpdatedAt = base.Add(time.Hour)
		return webhook.SourceAudit(byToken, cur.UpdatedAt, &before, cur), nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	src = got
	if got := getSource(t, s, ref); !reflect.DeepEqual(got, src) {
		t.Fatalf("after update = %+v, want %+v", got, src)
	}
	if _, err := s.SourceUpdate(ctx, webhook.SourceChange{Ref: webhook.SourceRef{OrganizationID: org, ID: newID(t)}}); webhook.ErrorCode(err) != webhook.ENotFound {
		t.Errorf("updating a missing source: %v, want not found", err)
	}
	// An error from Apply (an If-Match that no longer matches) changes
	// nothing and records nothing.
	refused := webhook.Errorf(webhook.EPrecondition, "changed")
	if _, err := s.SourceUpdate(ctx, webhook.SourceChange{Ref: ref, Apply: func(cur *webhook.Source) (*webhook.AuditEntry, error) {
		cur.Name = "not saved"
		return webhook.SourceAudit(byToken, base.Add(90*time.Minute), src, cur), refused
	}}); err != refused {
		t.Errorf("SourceUpdate whose Apply refused = %v, want that error", err)
	}
	if got := getSource(t, s, ref); !reflect.DeepEqual(got, src) {
		t.Fatalf("after a refused update = %+v, want %+v", got, src)
	}

	if err := s.SourceDelete(ctx, webhook.SourceChange{Ref: ref, Apply: func(cur *webhook.Source) (*webhook.AuditEntry, error) {
		return nil, refused
	}}); err != refused {
		t.Errorf("SourceDelete whose Apply refused = %v, want that error", err)
	}
	if got := getSource(t, s, ref); !reflect.DeepEqual(got, src) {
		t.Fatalf("after a refused delete = %+v, want %+v", got, src)
	}
	if err := s.SourceDelete(ctx, webhook.SourceChange{Ref: ref, Apply: func(cur *webhook.Source) (*webhook.AuditEntry, error) {
		if !reflect.DeepEqual(cur, src) {
			t.Errorf("SourceDelete's Apply sees %+v, want %+v", cur, src)
		}
		return webhook.SourceAudit(byCLI, base.Add(2*time.Hour), cur, nil), nil
	}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SourceGet(ctx, ref); webhook.ErrorCode(err) != webhook.ENotFound {
		t.Errorf("SourceGet after delete: %v, want not found", err)
	}
	if err := s.SourceDelete(ctx, webhook.SourceChange{Ref: ref}); webhook.ErrorCode(err) != webhook.ENotFound {
		t.Errorf("deleting twice: %v, want not found", err)
	}

	es := allAudit(t, s, org)
	wantNoSecret(t, es)
	var actions []webhook.AuditAction
	for _, e := range es {
		actions = append(actions, e.Action)
		if e.ResourceID != src.ID || e.Action.ResourceType() != "source" {
			t.Errorf("audit entry %s is about %s %s, want source %s", e.Action, e.Action.ResourceType(), e.ResourceID, src.ID)
		}
	}
	want := []webhook.AuditAction{webhook.AuditSourceDeleted, webhook.AuditSourceUpdated, webhook.AuditSourceCreated}
	if !reflect.DeepEqual(actions, want) {
		t.Fatalf("audit actions = %v, want %v", actions, want)
	}
	if c := changeOf(es[1], "secret"); c == nil || c.Secret != webhook.SecretChanged || c.Before != nil || c.After != nil {
		t.Errorf("the update's secret change = %+v, want changed, without values", c)
	}
}

func testSourceList(t *testing.T, s webhook.Store) {
	ctx := context.Background()
	org := newID(t)
	var want []*webhook.Source
	for i, name := range []string{"b", "a", "c"} {
		src := newSource(t, org, name)
		src.OrganizationID = org
		src.CreatedAt = base.Add(time.Duration(i) * time.Second)
		if err := s.SourceCreate(ctx, src, 0, nil); err != nil {
			t.Fatal(err)
		}
		want = append(want, src)
	}
	got, err := s.SourceList(ctx, org)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("SourceList = %+v, want oldest first %+v", got, want)
	}
}

// testSourceUpdateConcurrent races edits of one source, each adding a
// rule to the rules it sees: none is lost, because each Apply sees the
// row as the edits before it left it (what If-Match relies on).
func testSourceUpdateConcurrent(t *testing.T, s webhook.Store) {
	ctx := context.Background()
	org := newID(t)
	src := newSource(t, org, "raced")
	src.EnvironmentTypes = []webhook.EnvironmentRule{}
	if err := s.SourceCreate(ctx, src, 0, nil); err != nil {
		t.Fatal(err)
	}
	ref := webhook.SourceRef{OrganizationID: org, ID: src.ID}
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.SourceUpdate(ctx, webhook.SourceChange{Ref: ref, Apply: func(cur *webhook.Source) (*webhook.AuditEntry, error) {
				cur.EnvironmentTypes = append(cur.EnvironmentTypes, webhook.EnvironmentRule{Pattern: fmt.Sprint("env-", i), Type: webhook.ModeStaging})
				return nil, nil
			}})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := getSource(t, s, ref); len(got.EnvironmentTypes) != n {
		t.Fatalf("after %d concurrent edits adding a rule each, the source has %d rules: %+v", n, len(got.EnvironmentTypes), got.EnvironmentTypes)
	}
}

// testSourceAuditAtomic: a change whose audit entry cannot be written is
// not made.
func testSourceAuditAtomic(t *testing.T, s webhook.Store) {
	ctx := context.Background()
	org := newID(t)
	first := newSource(t, org, "first")
	first.OrganizationID = org
	audit := webhook.SourceAudit(byToken, base, nil, first)
	if err := s.SourceCreate(ctx, first, 0, audit); err != nil {
		t.Fatal(err)
	}
	second := newSource(t, org, "second")
	second.OrganizationID = org
	dup := webhook.SourceAudit(byToken, base, nil, second)
	dup.ID = audit.ID // the same entry id: the insert of the entry fails
	if err := s.SourceCreate(ctx, second, 0, dup); err == nil {
		t.Fatal("SourceCreate with a duplicate audit entry succeeded")
	}
	if _, err := s.SourceGet(ctx, webhook.SourceRef{OrganizationID: org, ID: second.ID}); webhook.ErrorCode(err) != webhook.ENotFound {
		t.Fatalf("the source was stored without its audit entry: %v", err)
	}
}

// testSourceSecretRewrite: what `hookd migrate --reencrypt` needs of a
// backend for sources: every source's stored secret, and a
// compare-and-set that loses to an edit.
func testSourceSecretRewrite(t *testing.T, s webhook.Store) {
	rw, ok := s.(interface {
		SourceSecrets(ctx context.Context) ([]*webhook.Source, error)
		SourceSetSecret(ctx context.Context, was *webhook.Source, secret string) (bool, error)
	})
	if !ok {
		t.Fatal("the backend cannot rewrite source secrets")
	}
	ctx := context.Background()
	a, b := newSource(t, newID(t), "a"), newSource(t, newID(t), "b")
	b.CreatedAt = base.Add(time.Second)
	for _, src := range []*webhook.Source{a, b} {
		if err := s.SourceCreate(ctx, src, 0, nil); err != nil {
			t.Fatal(err)
		}
	}
	got, err := rw.SourceSecrets(ctx)
	if err != nil || len(got) != 2 || got[0].ID != a.ID || got[0].OrganizationID != a.OrganizationID || got[1].ID != b.ID {
		t.Fatalf("SourceSecrets = %+v, %v", got, err)
	}
	// As stored: the suite's stores seal (see Run).
	if !strings.HasPrefix(got[0].Secret, "enc:v1:") || strings.Contains(got[0].Secret, a.Secret) {
		t.Fatalf("SourceSecrets: the secret is not as stored, sealed")
	}
	if ok, err := rw.SourceSetSecret(ctx, got[0], "sealed-a"); err != nil || !ok {
		t.Fatalf("set = %v, %v", ok, err)
	}
	// Stale (edited meanwhile), or another organization's: no change.
	if ok, err := rw.SourceSetSecret(ctx, got[0], "other"); err != nil || ok {
		t.Errorf("a stale set = %v, %v; want false", ok, err)
	}
	other := *got[1]
	other.OrganizationID = a.OrganizationID
	if ok, err := rw.SourceSetSecret(ctx, &other, "other"); err != nil || ok {
		t.Errorf("a set in the wrong organization = %v, %v; want false", ok, err)
	}
	stored := getSource(t, s, webhook.SourceRef{OrganizationID: a.OrganizationID, ID: a.ID})
	if stored.Secret != "sealed-a" || !stored.UpdatedAt.Equal(a.UpdatedAt) {
		t.Errorf("after set: %+v", stored)
	}
}

// wantTooManySources checks err is the refusal of a create past max.
func wantTooManySources(t *testing.T, err error, max int) {
	t.Helper()
	wantCode(t, err, webhook.EConflict)
	if want := webhook.TooManySources(max).Error(); err.Error() != want {
		t.Fatalf("error %q, want %q", err, want)
	}
}

// testSourceCreateLimit: past maxPerOrg a create stores nothing, not even
// its audit entry; each organization has its own count, 0 is no limit,
// and a deletion makes room.
func testSourceCreateLimit(t *testing.T, s webhook.Store) {
	ctx := context.Background()
	org, other := newID(t), newID(t)
	var srcs []*webhook.Source
	for i := range 3 {
		src := newSource(t, org, fmt.Sprint("s", i))
		if err := s.SourceCreate(ctx, src, 3, nil); err != nil {
			t.Fatalf("create %d of 3: %v", i+1, err)
		}
		srcs = append(srcs, src)
	}
	extra := newSource(t, org, "extra")
	wantTooManySources(t, s.SourceCreate(ctx, extra, 3, webhook.SourceAudit(byToken, base, nil, extra)), 3)
	_, err := s.SourceGet(ctx, webhook.SourceRef{OrganizationID: org, ID: extra.ID})
	wantCode(t, err, webhook.ENotFound)
	entries, err := s.AuditList(ctx, webhook.AuditListParams{OrganizationID: org, Limit: 10})
	if err != nil || len(entries) != 0 {
		t.Fatalf("audit after a refused create: %d entries (%v), want none", len(entries), err)
	}

	if err := s.SourceCreate(ctx, newSource(t, other, "o"), 3, nil); err != nil {
		t.Fatalf("another organization: %v", err)
	}
	wantTooManySources(t, s.SourceCreate(ctx, newSource(t, org, "lower"), 2, nil), 2)
	if err := s.SourceCreate(ctx, newSource(t, org, "unlimited"), 0, nil); err != nil {
		t.Fatalf("no limit: %v", err)
	}

	for _, src := range srcs[:2] {
		if err := s.SourceDelete(ctx, webhook.SourceChange{Ref: webhook.SourceRef{OrganizationID: org, ID: src.ID}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SourceCreate(ctx, extra, 3, nil); err != nil {
		t.Fatalf("create after deleting: %v", err)
	}
	list, err := s.SourceList(ctx, org)
	if err != nil || len(list) != 3 {
		t.Fatalf("SourceList: %d sources (%v), want 3", len(list), err)
	}
}

// testSourceCreateLimitConcurrent races creates in one organization:
// exactly the limit succeed.
func testSourceCreateLimitConcurrent(t *testing.T, s webhook.Store) {
	ctx := context.Background()
	org := newID(t)
	const max = 5
	srcs := make([]*webhook.Source, raceTries)
	for i := range srcs {
		srcs[i] = newSource(t, org, fmt.Sprint("s", i))
	}
	raceCreates(t, max, func(i int) error { return s.SourceCreate(ctx, srcs[i], max, nil) },
		webhook.TooManySources(max), func() (int, error) {
			list, err := s.SourceList(ctx, org)
			return len(list), err
		})
}

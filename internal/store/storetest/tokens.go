package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hookd/hookd/internal/webhook"
)

func newToken(t *testing.T, org uuid.UUID, at time.Time) *webhook.Token {
	t.Helper()
	id := newID(t)
	return &webhook.Token{ID: id, OrganizationID: org, Name: "ci", Hash: []byte("hash-" + id.String()), CreatedAt: at}
}

func testToken(t *testing.T, s webhook.Store) {
	ctx := context.Background()
	org := newID(t)
	tok := newToken(t, org, base)
	tok.Hash = []byte{0, 1, 2, 0xff, 0xfe} // arbitrary bytes, not text
	if err := s.TokenCreate(ctx, tok, nil); err != nil {
		t.Fatal(err)
	}
	got, err := s.TokenGetByHash(ctx, tok.Hash)
	if err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "TokenGetByHash", got, tok)

	_, err = s.TokenGetByHash(ctx, []byte("nope"))
	wantCode(t, err, webhook.ENotFound)

	dup := newToken(t, org, base)
	dup.Hash = tok.Hash
	wantCode(t, s.TokenCreate(ctx, dup, nil), webhook.EConflict)

	used := base.Add(time.Hour)
	if err := s.TokenTouch(ctx, tok.ID, used); err != nil {
		t.Fatal(err)
	}
	got, err = s.TokenGetByHash(ctx, tok.Hash)
	if err != nil {
		t.Fatal(err)
	}
	wantTime(t, "LastUsedAt", got.LastUsedAt, used)
	wantCode(t, s.TokenTouch(ctx, newID(t), used), webhook.ENotFound)
}

func testTokenRevoke(t *testing.T, s webhook.Store) {
	ctx := context.Background()
	org := newID(t)
	tok := newToken(t, org, base)
	if err := s.TokenCreate(ctx, tok, nil); err != nil {
		t.Fatal(err)
	}
	at := base.Add(time.Minute)
	if err := s.TokenRevoke(ctx, tok.ID, at, nil); err != nil {
		t.Fatal(err)
	}
	_, err := s.TokenGetByHash(ctx, tok.Hash)
	wantCode(t, err, webhook.ENotFound)
	if err := s.TokenRevoke(ctx, tok.ID, at.Add(time.Minute), nil); err != nil {
		t.Fatalf("revoking twice: %v", err)
	}
	wantCode(t, s.TokenRevoke(ctx, newID(t), at, nil), webhook.ENotFound)

	list, err := s.TokenList(ctx, org)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ID != tok.ID || list[0].RevokedAt.IsZero() || list[0].RevokedAt.Location() != time.UTC {
		t.Fatalf("TokenList = %+v, want the revoked token with RevokedAt", list)
	}
}

func testTokenList(t *testing.T, s webhook.Store) {
	ctx := context.Background()
	orgA, orgB := newID(t), newID(t)
	var want []*webhook.Token
	for i := range 3 {
		tok := newToken(t, orgA, base.Add(time.Duration(3-i)*time.Second))
		if err := s.TokenCreate(ctx, tok, nil); err != nil {
			t.Fatal(err)
		}
		want = append([]*webhook.Token{tok}, want...)
	}
	if err := s.TokenCreate(ctx, newToken(t, orgB, base), nil); err != nil {
		t.Fatal(err)
	}
	got, err := s.TokenList(ctx, orgA)
	if err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "TokenList", got, want)

	empty, err := s.TokenList(ctx, newID(t))
	if err != nil {
		t.Fatal(err)
	}
	if empty == nil || len(empty) != 0 {
		t.Fatalf("TokenList of empty org = %#v, want empty non-nil", empty)
	}
}

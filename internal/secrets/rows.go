package secrets

import (
	"errors"

	"github.com/hookd/hookd/internal/webhook"
)

// SealedFields lists the fields of w sealed at rest. Sealing another
// one takes a line here, and the column in the backends' WebhookSecrets
// and WebhookSetSecrets, so `hookd migrate --reencrypt` rewrites it too.
// A value stored before it was sealed (no "enc:v1:" prefix) still opens,
// as it is, and is sealed on the next write or re-encryption.
func SealedFields(w *webhook.Webhook) []*string {
	return []*string{&w.TargetURL, &w.TargetSecret, &w.PreviousSecret}
}

// SealWebhook returns a copy of w with its SealedFields sealed, which is
// what a backend writes; w itself is unchanged, so the caller goes on
// with the plaintext.
func (k *Keyring) SealWebhook(w *webhook.Webhook) (*webhook.Webhook, error) {
	c := *w
	for _, f := range SealedFields(&c) {
		var err error
		if *f, err = k.Seal("webhook", w.ID, *f); err != nil {
			return nil, err
		}
	}
	return &c, nil
}

// OpenWebhook opens w's SealedFields in place, as a backend reads a row.
// A field it cannot open (its key is not configured, or it is corrupt) is
// cleared, never left sealed, w is marked Unreadable, and the first such
// error is returned: the caller either fails, or goes on without the
// secrets where that is safe (showing it, a delete, an intake that will
// not send).
func (k *Keyring) OpenWebhook(w *webhook.Webhook) error {
	var errs []error
	for _, f := range SealedFields(w) {
		plain, err := k.Open("webhook", w.ID, *f)
		if err != nil {
			errs = append(errs, err)
		}
		*f = plain
	}
	w.Unreadable = nil
	if len(errs) > 0 {
		w.Unreadable = errs[0]
	}
	return w.Unreadable
}

// SealSource returns a copy of src with its secret sealed, bound to the
// source's id like a webhook's; src is unchanged.
func (k *Keyring) SealSource(src *webhook.Source) (*webhook.Source, error) {
	c := *src
	var err error
	c.Secret, err = k.Seal("source", src.ID, src.Secret)
	return &c, err
}

// OpenSource opens src's secret in place; one it cannot open is cleared,
// src marked Unreadable, and the error returned unless lenient: a caller
// that can go on without the secret (showing it, a delete) asks for it,
// so that a source whose key is gone can still be seen and deleted.
func (k *Keyring) OpenSource(src *webhook.Source, lenient bool) error {
	var err error
	src.Secret, err = k.Open("source", src.ID, src.Secret)
	src.Unreadable = err
	if lenient && Unreadable(err) {
		return nil
	}
	return err
}

// Unreadable reports whether err is a sealed value that cannot be opened
// (ErrUnknownKey or ErrCorrupt) rather than, say, a database error.
func Unreadable(err error) bool {
	return errors.Is(err, ErrUnknownKey) || errors.Is(err, ErrCorrupt)
}

package main

import (
	"context"
	"fmt"
	"io"

	"github.com/hookd/hookd/internal/secrets"
)

// reencryptSourceSecrets is the event sources' part of `hookd migrate
// --reencrypt`: their secrets are sealed with the same keys as webhooks'.
func reencryptSourceSecrets(ctx context.Context, db store, keys *secrets.Keyring, stderr io.Writer) error {
	rw, ok := db.(secrets.SourceRewriter)
	if !ok {
		return fmt.Errorf("--reencrypt: this backend cannot list every source")
	}
	res, err := secrets.ReencryptSources(ctx, rw, keys)
	printReencrypted(stderr, "source", res, keys)
	if err != nil {
		return fmt.Errorf("--reencrypt: some source secrets could not be read; they are unchanged: %w", err)
	}
	return nil
}

// printReencrypted says what a re-encryption of what's secrets did.
func printReencrypted(w io.Writer, what string, res secrets.ReencryptResult, keys *secrets.Keyring) {
	fmt.Fprintf(w, "hookd: %d %s secrets re-encrypted with key %s, %d already were", res.Rewritten, what, keys.NewestID(), res.Current)
	if res.Changed > 0 {
		fmt.Fprintf(w, ", %d changed meanwhile (run again)", res.Changed)
	}
	fmt.Fprintln(w)
}

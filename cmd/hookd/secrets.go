package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/hookd/hookd/internal/secrets"
)

// encryptionKeys returns the keys webhook secrets are sealed with.
// HOOKD_ENCRYPTION_KEY (or _FILE) wins. Without it, a SQLite database gets
// a key file beside it, made on first use: one host, one file, nothing to
// share. PostgreSQL gets no key: several nodes must share one, and hookd
// cannot hand it to the others, so it stores secrets in clear and says so
// at every start rather than refusing to run (which would break every
// deployment that predates encryption on upgrade).
func encryptionKeys(c *config, log *slog.Logger) (*secrets.Keyring, error) {
	if c.EncryptionKeys.Len() > 0 {
		return c.EncryptionKeys, nil
	}
	if c.Database.Backend != backendSQLite {
		// Nowhere to keep a key that the database's own dump would not
		// hold, and every node needs the same one: the operator gives it.
		return nil, errors.New("HOOKD_ENCRYPTION_KEY: required with PostgreSQL, so that the database alone never reveals a webhook secret; " +
			"generate one with `openssl rand -base64 32` and give every node the same (secrets stored unencrypted by an earlier hookd are still read, and `hookd migrate --reencrypt` encrypts them)")
	}
	return sqliteKeyFile(c.Database.Path+".key", log)
}

// sqliteKeyFile reads the key file at path, creating it (mode 0600) if it
// does not exist. It is written aside and linked into place, so that two
// processes starting at once agree on one key and neither reads half a file.
func sqliteKeyFile(path string, log *slog.Logger) (*secrets.Keyring, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err := createKeyFile(path); err != nil {
			return nil, fmt.Errorf("creating the encryption key file %s: %w", path, err)
		}
		// Never the key itself: only where it is and why it matters.
		log.Info("created an encryption key for webhook secrets; back it up with the database, which cannot be read without it", "path", path)
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the encryption key file: %w", err)
	}
	keys, err := secrets.ParseKeys(string(b))
	if err != nil {
		return nil, fmt.Errorf("encryption key file %s: %w", path, err)
	}
	if keys.Len() == 0 {
		return nil, fmt.Errorf("encryption key file %s is empty", path)
	}
	return keys, nil
}

func createKeyFile(path string) error {
	key, err := secrets.GenerateKey()
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	// CreateTemp makes the file 0600, before any byte of the key is in it.
	_, err = io.WriteString(tmp, key+"\n")
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return nil
}

// reencryptSecrets is `hookd migrate --reencrypt`: every webhook secret is
// sealed again with the newest key, so that older keys can be dropped.
func reencryptSecrets(ctx context.Context, c *config, db store, stderr io.Writer) error {
	keys, err := encryptionKeys(c, newLogger(c, stderr))
	if err != nil {
		return err
	}
	if keys.Len() == 0 {
		return errors.New("--reencrypt: set HOOKD_ENCRYPTION_KEY to the key to encrypt with (newest first, then the keys in use)")
	}
	rw, ok := db.(secrets.Rewriter)
	if !ok {
		return fmt.Errorf("--reencrypt: the %s backend cannot list every webhook", c.Database.Backend)
	}
	res, err := secrets.Reencrypt(ctx, rw, keys)
	printReencrypted(stderr, "webhook", res, keys)
	if err != nil {
		return fmt.Errorf("--reencrypt: some secrets could not be read; they are unchanged: %w", err)
	}
	if err := reencryptSourceSecrets(ctx, db, keys, stderr); err != nil {
		return err
	}
	// SQLite keeps what was overwritten in free pages and WAL frames
	// until they are reused: rebuild the file so the values just sealed
	// are gone from it in clear too.
	if c, ok := db.(interface {
		Compact(context.Context) (bool, error)
	}); ok {
		emptied, err := c.Compact(ctx)
		if err != nil {
			return fmt.Errorf("--reencrypt: compacting the database: %w", err)
		}
		if !emptied {
			fmt.Fprintln(stderr, "hookd: the WAL is in use by another process; run again with hookd stopped to remove old copies from it")
		}
	}
	return nil
}

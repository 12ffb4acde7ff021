package main

import (
	"context"
	"fmt"
	"io"
	"os/user"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/auth"
	"github.com/hookd/hookd/internal/webhook"
)

const tokenUsage = `Usage: hookd token COMMAND [flags]

Commands:
  create --organization UUID [--name NAME]    make a token, printed alone on stdout
  list --organization UUID                    list an organization's tokens
  revoke TOKEN_ID                             revoke a token: it answers 401 from then on

They work on the database (HOOKD_DATABASE_URL), before any server runs or
while one runs on it; "hookd token COMMAND --help" lists its flags.
`

// runToken manages API tokens directly in the database, so it works
// before any server runs and while one runs on the same database.
func runToken(ctx context.Context, args []string, environ []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, tokenUsage)
		return usageError{"token: no subcommand given"}
	}
	switch args[0] {
	case "help", "-h", "--help":
		fmt.Fprint(stdout, tokenUsage)
		return nil
	}
	// Each subcommand declares only the flags it reads: revoke acts on a
	// token id alone, whatever its organization.
	var (
		fs        = newFlagSet("token "+args[0], "", stderr, false)
		org, name = new(string), new(string)
	)
	switch args[0] {
	case "create":
		fs.StringVar(org, "organization", "", "organization UUID the token acts on (required)")
		fs.StringVar(name, "name", "", "a name to recognise the token by")
		fs.Usage = flagUsage(fs, stderr, "token create --organization UUID [--name NAME]\n\nPrints the new token alone on stdout. Only its hash is stored: it cannot be shown again.")
	case "list":
		fs.StringVar(org, "organization", "", "organization UUID whose tokens to list (required)")
		fs.Usage = flagUsage(fs, stderr, "token list --organization UUID")
	case "revoke":
		fs.Usage = flagUsage(fs, stderr, "token revoke TOKEN_ID\n\nThe token answers 401 from then on.")
	default:
		fmt.Fprint(stderr, tokenUsage)
		return usageError{fmt.Sprintf("token: unknown subcommand %q (create, list or revoke)", args[0])}
	}
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	c, err := loadServerConfig(environ, stderr)
	if err != nil {
		return err
	}
	orgID := func() (uuid.UUID, error) {
		id, err := uuid.Parse(*org)
		if *org == "" || err != nil {
			return uuid.Nil, usageError{"--organization must be an organization UUID"}
		}
		return id, nil
	}
	// Validate the command line before touching the database.
	var orgUUID, tokenID uuid.UUID
	switch args[0] {
	case "create", "list":
		if fs.NArg() > 0 {
			return usageError{fmt.Sprintf("token %s takes no arguments, only flags: got %q", args[0], fs.Args())}
		}
		if orgUUID, err = orgID(); err != nil {
			return err
		}
		// No caller may act on the nil UUID (auth.Identity.CanAccess), so
		// a token for it would answer 403 to everything. Listing stays
		// allowed, to find one made before this check and revoke it.
		if args[0] == "create" && orgUUID == uuid.Nil {
			return usageError{"--organization must be an organization UUID, not the nil UUID: no token can act on it"}
		}
	case "revoke":
		if fs.NArg() != 1 {
			return usageError{"token revoke takes one token id (see hookd token list)"}
		}
		if tokenID, err = uuid.Parse(fs.Arg(0)); err != nil {
			return usageError{"token revoke: " + fs.Arg(0) + " is not a token id"}
		}
	}

	db, err := openStore(ctx, c.Database, noKeys)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		return fmt.Errorf("migrating: %w", err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	switch args[0] {
	case "create":
		plain, hash, err := auth.NewToken()
		if err != nil {
			return err
		}
		id, err := uuid.NewV7()
		if err != nil {
			return err
		}
		tok := &webhook.Token{ID: id, OrganizationID: orgUUID, Name: *name, Hash: hash, CreatedAt: now}
		if err := db.TokenCreate(ctx, tok, webhook.TokenAudit(cliActor(), now, webhook.AuditTokenCreated, tok)); err != nil {
			return err
		}
		fmt.Fprintln(stdout, plain)
		fmt.Fprintf(stderr, "hookd: created token %s for organization %s\n", id, orgUUID)
	case "list":
		tokens, err := db.TokenList(ctx, orgUUID)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tCREATED\tLAST USED\tREVOKED")
		for _, t := range tokens {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.ID, orDash(t.Name), t.CreatedAt.Format(time.RFC3339), timeOrDash(t.LastUsedAt), timeOrDash(t.RevokedAt))
		}
		return tw.Flush()
	case "revoke":
		audit := webhook.TokenAudit(cliActor(), now, webhook.AuditTokenRevoked, &webhook.Token{ID: tokenID})
		if err := db.TokenRevoke(ctx, tokenID, now, audit); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "hookd: revoked token %s\n", tokenID)
	}
	return nil
}

// cliActor is who the audit trail says acted through this command: the
// operator on the server's machine, named by their OS account when it is
// known. They act on any organization, with no token of their own.
func cliActor() webhook.Actor {
	a := webhook.Actor{Kind: webhook.ActorCLI}
	if u, err := user.Current(); err == nil {
		a.ID = u.Username
	}
	return a
}

func flagUsage(fs interface{ PrintDefaults() }, w io.Writer, synopsis string) func() {
	return func() {
		fmt.Fprintf(w, "Usage: hookd %s\n", synopsis)
		fs.PrintDefaults()
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func timeOrDash(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

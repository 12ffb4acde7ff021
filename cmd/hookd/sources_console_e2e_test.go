package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
)

// TestConsoleSources drives the console's Sources page in Chromium: add a
// source, see its ingest URL, have the tool report to it, delete it.
func TestConsoleSources(t *testing.T) {
	b := newBrowser(t, 90*time.Second)
	dbURL := "sqlite:" + filepath.Join(t.TempDir(), "hookd.db")
	srv := startServer(t, deliveryEnv(dbURL, nil))
	org := uuid.New()
	token := newToken(t, dbURL, org)

	b.run("signing in",
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible(css("#signin-token")),
		chromedp.SendKeys(css("#signin-token"), token),
		chromedp.SendKeys(css("#signin-org"), org.String()),
		chromedp.Click(css("#signin-submit")),
		chromedp.WaitVisible(css("#empty-state")),
	)
	b.run("opening Sources", chromedp.Click(css("#nav-sources")), chromedp.WaitVisible(css("#sources-empty")), chromedp.WaitVisible(css("#source-form")))

	// A bad rule is refused before anything is sent.
	b.run("a bad rule",
		chromedp.SetValue(css("#f-source-kind"), "FLUX"),
		chromedp.SendKeys(css("#f-source-name"), "flux on eu-1"),
		chromedp.Click(css("#source-generate")),
		chromedp.SendKeys(css("#f-source-rules"), "prod-*"),
		chromedp.Click(css("#source-submit")),
		chromedp.WaitVisible(css("#source-error")),
	)
	secret := b.eval(`document.querySelector('#f-source-secret').value`)
	if len(secret) != 64 {
		t.Fatalf("the generated secret is %q, want 64 hex digits", secret)
	}
	b.run("adding the source",
		clearInput("#f-source-rules"),
		chromedp.SendKeys(css("#f-source-rules"), "prod-*=PRODUCTION\nstaging=staging"),
		chromedp.Click(css("#source-submit")),
		chromedp.WaitVisible(css("#source-rows tr")),
	)
	b.screenshot("6-sources")
	row := b.eval(`document.querySelector('#source-rows tr').innerText`)
	for _, want := range []string{"flux on eu-1", "Flux", "prod-*=PRODUCTION, staging=STAGING", "set", srv.URL + "/organization/" + org.String() + "/source/"} {
		if !strings.Contains(row, want) {
			t.Errorf("the source's row %q does not show %q", row, want)
		}
	}
	if strings.Contains(b.eval(`document.body.innerText`), secret) {
		t.Error("the page shows the secret after it was saved")
	}

	// Flux reports to the ingest URL shown, signed with the secret typed.
	ingest := b.eval(`document.querySelector('#source-rows code.ingest-url').textContent`)
	body, err := os.ReadFile(filepath.Join("..", "..", "internal", "source", "testdata", "flux_helmrelease_upgraded.json"))
	if err != nil {
		t.Fatal(err)
	}
	var a accepted
	if st, _, resp := (call{t: t, base: ingest, extra: signAs("FLUX", secret, body, nil)}).do("POST", "", body, &a); st != 202 || a.ID == "" {
		t.Fatalf("Flux to the console's ingest URL: %d %s", st, resp)
	}

	// Edit: a new name and no rules, the secret kept (left empty).
	b.run("editing the source",
		chromedp.Click(css(`#source-rows button[data-action="edit"]`)),
		chromedp.WaitVisible(css("#source-cancel")),
	)
	if got := b.eval(`document.querySelector('#f-source-name').value + '|' + document.querySelector('#f-source-kind').value + '|' + document.querySelector('#f-source-rules').value`); got != "flux on eu-1|FLUX|prod-*=PRODUCTION\nstaging=STAGING" {
		t.Errorf("the edit form holds %q", got)
	}
	b.run("saving the edit",
		clearInput("#f-source-name"),
		chromedp.SendKeys(css("#f-source-name"), "flux, renamed"),
		clearInput("#f-source-rules"),
		chromedp.Click(css("#source-submit")),
	)
	b.waitJS("the renamed source", `(document.querySelector('#source-rows tr')?.innerText || '').includes('flux, renamed')`)
	if row := b.eval(`document.querySelector('#source-rows tr').innerText`); !strings.Contains(row, "all DEVELOPMENT") {
		t.Errorf("after the edit the row is %q, want no rules", row)
	}
	body2 := []byte(strings.Replace(string(body), "UpgradeSucceeded", "InstallSucceeded", 1))
	if st, _, resp := (call{t: t, base: ingest, extra: signAs("FLUX", secret, body2, nil)}).do("POST", "", body2, nil); st != 202 {
		t.Fatalf("Flux after the edit, with the kept secret: %d %s", st, resp)
	}

	b.eval(`(window.confirm = () => true, "")`)
	b.run("deleting the source",
		chromedp.Click(css(`#source-rows button[data-action="delete"]`)),
		chromedp.WaitVisible(css("#sources-empty")),
	)
	if st, _, _ := (call{t: t, base: ingest, extra: signAs("FLUX", secret, body, nil)}).do("POST", "", body, nil); st != 404 {
		t.Errorf("the deleted source's ingest URL answers %d, want 404", st)
	}
	// The audit log names the source's changes.
	b.run("the audit log", chromedp.Click(css("#nav-audit")), chromedp.WaitVisible(css("#audit-rows tr")))
	if got := b.eval(`[...document.querySelectorAll('#audit-rows tr')].map(r => r.dataset.action).join(',')`); got != "source.deleted,source.updated,source.created,token.created" {
		t.Errorf("the audit log lists %s", got)
	}
}

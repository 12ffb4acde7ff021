package main

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestREADMEConfigurationTable keeps the README's table and the variables
// hookd reads in step, defaults included.
func TestREADMEConfigurationTable(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `((?:HOOKD|OTEL)_[A-Z0-9_]+|GOGC)` \\| (`([^`]*)`)? ?\\| (.*) \\|$")
	documented, meaning := map[string]string{}, map[string]string{}
	for _, m := range row.FindAllStringSubmatch(string(readme), -1) {
		documented[m[1]], meaning[m[1]] = m[3], m[4]
	}
	var names []string
	for _, v := range variables {
		names = append(names, v.name)
		def, ok := documented[v.name]
		if !ok {
			t.Errorf("README's configuration table lacks %s", v.name)
			continue
		}
		if def != v.def {
			t.Errorf("README says %s defaults to %q; hookd uses %q", v.name, def, v.def)
		}
		// The README says "hookd serve --help prints the same list".
		if meaning[v.name] != v.help {
			t.Errorf("README and serve --help say different things of %s:\nREADME: %s\n--help: %s", v.name, meaning[v.name], v.help)
		}
	}
	for name := range documented {
		if !slices.Contains(names, name) {
			t.Errorf("README documents %s, which hookd does not read", name)
		}
	}
}

func TestLoadConfigErrors(t *testing.T) {
	cases := map[string]string{
		"HOOKD_LOG_FORMAT":                   "xml",
		"HOOKD_ROLE":                         "worker",
		"HOOKD_LOG_LEVEL":                    "loud",
		"HOOKD_DELIVERY_TIMEOUT":             "soon",
		"HOOKD_RETRY_SCHEDULE":               "0s,-5s",
		"HOOKD_MAX_INFLIGHT_PER_WEBHOOK":     "0",
		"HOOKD_ALLOWED_TARGET_CIDRS":         "127.0.0.0/33",
		"HOOKD_NAT64_PREFIXES":               "10.0.0.0/8",
		"HOOKD_DATABASE_URL":                 "mysql://x",
		"HOOKD_RETENTION":                    "-1h",
		"HOOKD_SECRET_ROTATION_GRACE":        "-1s",
		"HOOKD_READ_TIMEOUT":                 "0s",
		"HOOKD_API_RATE":                     "-1",
		"HOOKD_INTAKE_RATE":                  "fast",
		"HOOKD_AUTH_FAILURE_RATE":            "NaN",
		"HOOKD_DATABASE_LISTEN_URL":          "db.internal:5432",
		"HOOKD_JWT_JWKS_REFRESH":             "5ms",
		"HOOKD_API_BURST":                    "0",
		"HOOKD_INTAKE_BURST":                 "1.5",
		"HOOKD_MAX_WEBHOOKS_PER_ORG":         "-1",
		"HOOKD_MAX_SOURCES_PER_ORG":          "-1",
		"OTEL_EXPORTER_OTLP_ENDPOINT":        "collector:4318",
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "ftp://collector/v1/traces",
	}
	for name, value := range cases {
		_, err := loadConfig(func(k string) string {
			if k == name {
				return value
			}
			return ""
		})
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=%s: error %v does not name the variable", name, value, err)
		}
	}
	// Shorter than the Idempotency-Key's window, retention would forget a
	// key while a retry may still come.
	if _, err := loadConfig(func(k string) string {
		if k == "HOOKD_RETENTION" {
			return "23h"
		}
		return ""
	}); err == nil || !strings.Contains(err.Error(), "HOOKD_RETENTION") || !strings.Contains(err.Error(), "at least 24h") {
		t.Errorf("HOOKD_RETENTION=23h: error %v, want one naming the variable and its least value", err)
	}
	// Only the secrets and the database's URLs have a _FILE variant: any
	// other would be ignored, leaving its variable at the default.
	if _, err := loadConfig(func(k string) string {
		if k == "HOOKD_ADDR_FILE" {
			return "/run/secrets/addr"
		}
		return ""
	}); err == nil || !strings.Contains(err.Error(), "HOOKD_ADDR_FILE") {
		t.Errorf("HOOKD_ADDR_FILE: error %v, want one naming it", err)
	}
	// A database URL holds its password: container secrets give it in a
	// file.
	dir := t.TempDir()
	for name, url := range map[string]string{"db": "postgres://hookd:pw@db.internal:5432/hookd\n", "listen": "postgres://hookd:pw@db-direct:5432/hookd"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(url), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c, err := loadConfig(func(k string) string {
		switch k {
		case "HOOKD_DATABASE_URL": // as the container image sets it
			return "sqlite:/data/hookd.db"
		case "HOOKD_DATABASE_URL_FILE":
			return filepath.Join(dir, "db")
		case "HOOKD_DATABASE_LISTEN_URL_FILE":
			return filepath.Join(dir, "listen")
		case "HOOKD_ENCRYPTION_KEY":
			return base64.StdEncoding.EncodeToString(make([]byte, 32))
		}
		return ""
	})
	if err != nil {
		t.Errorf("database URLs from files: %v", err)
	} else if c.Database.URL != "postgres://hookd:pw@db.internal:5432/hookd" || c.DatabaseListenURL != "postgres://hookd:pw@db-direct:5432/hookd" {
		t.Errorf("database URLs from files: %q and %q", c.Database.URL, c.DatabaseListenURL)
	}
	if _, err := loadConfig(func(k string) string {
		if k == "HOOKD_DATABASE_URL_FILE" {
			return filepath.Join(dir, "missing")
		}
		return ""
	}); err == nil || !strings.Contains(err.Error(), "HOOKD_DATABASE_URL_FILE") {
		t.Errorf("HOOKD_DATABASE_URL_FILE naming no file: error %v, want one naming it", err)
	}
	// The first attempt is made as the event is accepted: a first delay
	// would be ignored.
	if _, err := loadConfig(func(k string) string {
		if k == "HOOKD_RETRY_SCHEDULE" {
			return "1m,5m"
		}
		return ""
	}); err == nil || !strings.Contains(err.Error(), "HOOKD_RETRY_SCHEDULE") || !strings.Contains(err.Error(), "0s") {
		t.Errorf("HOOKD_RETRY_SCHEDULE=1m,5m: error %v, want one naming the variable and saying the first delay is 0s", err)
	}
	if c, err := loadConfig(func(k string) string {
		if k == "HOOKD_RETENTION" {
			return "24h"
		}
		return ""
	}); err != nil || c.Retention != 24*time.Hour {
		t.Errorf("HOOKD_RETENTION=24h: %v, want it taken", err)
	}
	c, err = loadConfig(func(string) string { return "" })
	if err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if c.Addr != ":8080" || c.Database != (database{Backend: backendSQLite, Path: "hookd.db", URL: "sqlite:hookd.db"}) || c.Role != roleAll || len(c.RetrySchedule) != 8 || c.MaxInflightPerWebhook != 8 ||
		c.SecretRotationGrace != 24*time.Hour {
		t.Errorf("defaults: %+v", c)
	}
	// No grace is a choice, unlike a zero timeout.
	c, err = loadConfig(func(k string) string {
		if k == "HOOKD_SECRET_ROTATION_GRACE" {
			return "0"
		}
		return ""
	})
	if err != nil || c.SecretRotationGrace != 0 {
		t.Errorf("HOOKD_SECRET_ROTATION_GRACE=0: %v, %v", c, err)
	}
	if c.ReadTimeout != 30*time.Second || c.APIRate != 50 || c.APIBurst != 200 || c.IntakeRate != 100 || c.IntakeBurst != 1000 || c.MaxWebhooksPerOrg != 100 || c.MaxSourcesPerOrg != 100 {
		t.Errorf("default limits: %+v", c)
	}
	off, err := loadConfig(func(k string) string {
		return map[string]string{"HOOKD_API_RATE": "0", "HOOKD_INTAKE_RATE": "0", "HOOKD_MAX_WEBHOOKS_PER_ORG": "0", "HOOKD_MAX_SOURCES_PER_ORG": "0"}[k]
	})
	if err != nil || off.APIRate != 0 || off.IntakeRate != 0 || off.MaxWebhooksPerOrg != 0 || off.MaxSourcesPerOrg != 0 {
		t.Errorf("limits off: %v %+v", err, off)
	}
}

// The OTLP URL follows OpenTelemetry's rules: the traces endpoint as it is,
// or the general endpoint plus /v1/traces.
func TestOTLPTracesURL(t *testing.T) {
	cases := []struct{ endpoint, traces, want string }{
		{"", "", ""},
		{"http://collector:4318", "", "http://collector:4318/v1/traces"},
		{"https://collector:4318/", "", "https://collector:4318/v1/traces"},
		{"http://collector:4318", "http://other:4318/custom", "http://other:4318/custom"},
	}
	for _, c := range cases {
		cfg, err := loadConfig(func(k string) string {
			return map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": c.endpoint, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": c.traces}[k]
		})
		if err != nil {
			t.Errorf("%q, %q: %v", c.endpoint, c.traces, err)
		} else if cfg.OTLPTracesURL != c.want {
			t.Errorf("%q, %q: %q, want %q", c.endpoint, c.traces, cfg.OTLPTracesURL, c.want)
		}
	}
}

// TestVariableNamesInRepository: every HOOKD_ variable the repository
// names (the server's, the client commands', the tests' and the bench's)
// is one checkVariableNames knows, so that none of them stops hookd or
// is warned of when it is in hookd's environment.
func TestVariableNamesInRepository(t *testing.T) {
	name := regexp.MustCompile(`HOOKD_[A-Z0-9_]*[A-Z0-9]\b`)
	seen := map[string]bool{}
	err := filepath.WalkDir("../..", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			if d != nil && d.Name() == ".git" {
				return filepath.SkipDir
			}
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, n := range name.FindAllString(string(b), -1) {
			seen[n] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for n := range seen {
		// Names the tests make up to see them refused.
		if n == "HOOKD_ADDR_FILE" || n == "HOOKD_DATABSE_URL" || n == "HOOKD_RETRY_SCHEDUEL" || n == "HOOKD_ENCRYPTION_KEY_FIEL" ||
			n == "HOOKD_ENCRYPTION" || n == "HOOKD_DATABASE" || n == "HOOKD_SHARDING_MODE" {
			continue
		}
		ignored, err := checkVariableNames([]string{n + "=x"})
		if err != nil || len(ignored) > 0 {
			t.Errorf("%s is named in the repository, but hookd would refuse (%v) or ignore (%q) it: add it to variables or otherVariables", n, err, ignored)
		}
	}
	if len(seen) < 30 {
		t.Errorf("found only %d HOOKD_ names: is the walk reading the repository?", len(seen))
	}
}

// A _FILE variable names a file on purpose: an empty one (a Secret's key
// left blank, a mount that raced its writer) is a mistake, not "unset".
// Read as unset, HOOKD_DATABASE_URL_FILE fell back to the image's SQLite
// file, and HOOKD_ENCRYPTION_KEY_FILE to a key hookd made itself.
func TestSecretFileEmpty(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, name := range fileVariables {
		_, err := loadConfig(func(k string) string {
			switch k {
			case "HOOKD_DATABASE_URL": // as the container image sets it
				return "sqlite:/data/hookd.db"
			case name + "_FILE":
				return empty
			}
			return ""
		})
		if err == nil || !strings.Contains(err.Error(), name+"_FILE") || !strings.Contains(err.Error(), "empty") {
			t.Errorf("%s_FILE naming an empty file: error %v, want one naming it and saying it is empty", name, err)
		}
	}
}

// The OTLP exporter logs a header it cannot parse, value and all, on
// stderr and sends traces without it: a collector's token written as
// "Authorization: Bearer …" (a colon, not =) would be in hookd's log.
// loadConfig refuses such headers first, naming the variable, never the
// value.
func TestOTLPHeadersRefused(t *testing.T) {
	for _, name := range []string{"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS"} {
		for _, value := range []string{"Authorization: Bearer s3cret", "x-token=%zzs3cret", "a=b,,x-token=s3cret", "bad key=s3cret"} {
			_, err := loadConfig(func(k string) string {
				return map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", name: value}[k]
			})
			if err == nil || !strings.Contains(err.Error(), name) || strings.Contains(err.Error(), "s3cret") {
				t.Errorf("%s=%q: error %v, want one naming the variable and not its value", name, value, err)
			}
		}
	}
	good := "Authorization=Bearer%20s3cret, x-scope = tenant-1"
	for _, env := range []map[string]string{
		{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_EXPORTER_OTLP_HEADERS": good, "OTEL_EXPORTER_OTLP_TRACES_HEADERS": good},
		// Tracing off: the exporter, which reads them, is not made.
		{"OTEL_EXPORTER_OTLP_HEADERS": "Authorization: Bearer s3cret"},
	} {
		if _, err := loadConfig(func(k string) string { return env[k] }); err != nil {
			t.Errorf("%v: %v", env, err)
		}
	}
}

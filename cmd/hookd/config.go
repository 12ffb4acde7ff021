package main

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/hookd/hookd/internal/auth"
	"github.com/hookd/hookd/internal/delivery"
	"github.com/hookd/hookd/internal/secrets"
	"github.com/hookd/hookd/internal/webhook"
)

// config is everything hookd reads from its environment, read once in
// run and passed down.
type config struct {
	Addr      string
	Role      role
	Database  database
	LogFormat string
	LogLevel  slog.Level

	JWTSecret             []byte
	JWKSURL               string
	DatabaseListenURL     string
	JWKSRefresh           time.Duration
	JWTIssuer             string
	JWTAudience           string
	JWTOrganizationsClaim string

	DeliveryTimeout       time.Duration
	RetrySchedule         webhook.Schedule
	DisableAfter          time.Duration
	SecretRotationGrace   time.Duration
	MaxInflightPerWebhook int
	AllowedTargetCIDRs    []netip.Prefix
	// NAT64Prefixes are the network's own NAT64 prefixes;
	// DiscoverNAT64: find them at start instead (RFC 7050).
	NAT64Prefixes []netip.Prefix
	DiscoverNAT64 bool
	Retention     time.Duration
	PprofAddr     string
	// OTLPTracesURL is where spans are sent over OTLP/HTTP; empty: off.
	OTLPTracesURL string

	// Abuse limits; a zero rate or count is no limit.
	ReadTimeout       time.Duration
	APIRate           float64
	APIBurst          int
	AuthFailureRate   float64
	AuthFailureBurst  int
	IntakeRate        float64
	IntakeBurst       int
	MaxWebhooksPerOrg int
	MaxSourcesPerOrg  int

	// EncryptionKeys seal webhook secrets at rest, newest first; empty
	// when none is configured (see encryptionKeys for what happens then).
	EncryptionKeys *secrets.Keyring
}

// variable documents one environment variable; the README's table is
// checked against this list by a test.
type variable struct {
	name, def, help string
}

var variables = []variable{
	{"HOOKD_ADDR", ":8080", "address the HTTP server listens on"},
	{"HOOKD_ROLE", "all", "`all` (API and delivery) or `api` (API and intake only: deliveries wait for a node that delivers; on SQLite, none can serve the file while this one runs, and `serve` warns so)"},
	{"HOOKD_DATABASE_URL", "sqlite:hookd.db", "`sqlite:PATH` (embedded) or `postgres://...` (several nodes may share it); `HOOKD_DATABASE_URL_FILE` reads it from a file"},
	{"HOOKD_DATABASE_LISTEN_URL", "", "PostgreSQL: a direct `postgres://...` URL for notifications when `HOOKD_DATABASE_URL` goes through a pooler in transaction mode (without it nodes poll every 200 ms, up to 1.6 s apart while their queues are full, and learn of a webhook deleted on another node only at their next lease renewal); `HOOKD_DATABASE_LISTEN_URL_FILE` reads it from a file"},
	{"HOOKD_LOG_FORMAT", "text", "`text` or `json`"},
	{"HOOKD_LOG_LEVEL", "info", "`debug`, `info`, `warn` or `error`"},
	{"HOOKD_JWT_HS256_SECRET", "", "accept HS256 JWTs signed with this secret (development; at least 32 bytes); `HOOKD_JWT_HS256_SECRET_FILE` reads it from a file"},
	{"HOOKD_JWT_JWKS_URL", "", "accept RS256/ES256 JWTs signed by a key of this JWKS (cached, refreshed)"},
	{"HOOKD_JWT_JWKS_REFRESH", "5m", "how often the JWKS is fetched again, so removed keys stop working (at least 5s); a JWT naming a key not loaded fetches it at once (at most every 5s)"},
	{"HOOKD_JWT_ISSUER", "", "required `iss` of JWTs, when set"},
	{"HOOKD_JWT_AUDIENCE", "", "required `aud` of JWTs, when set; set it with a JWKS (`serve` warns without it): an identity provider signs its other applications' tokens with the same keys"},
	{"HOOKD_JWT_ORGANIZATIONS_CLAIM", "organizations", "JWT claim listing the organization UUIDs the bearer may act on"},
	{"HOOKD_DELIVERY_TIMEOUT", "15s", "timeout of one delivery request"},
	{"HOOKD_RETRY_SCHEDULE", webhook.DefaultSchedule, "delays before each attempt, the first `0s` (an event is sent as it is accepted); ±20% jitter after the first"},
	{"HOOKD_DISABLE_AFTER", "120h", "disable a webhook that failed continuously this long"},
	{"HOOKD_SECRET_ROTATION_GRACE", "24h", "after a webhook's secret changes, deliveries are signed with the new and the previous secret this long (`webhook-signature` only); `0` for no grace"},
	{"HOOKD_MAX_INFLIGHT_PER_WEBHOOK", "8", "concurrent requests to one webhook at most"},
	{"HOOKD_ALLOWED_TARGET_CIDRS", "", "non-public ranges targets may resolve to anyway, e.g. `127.0.0.0/8,::1/128`"},
	{"HOOKD_NAT64_PREFIXES", "auto", "the network's own NAT64 prefixes, e.g. `2001:db8:64::/96`: a target in one is refused if the IPv4 address it carries is non-public, as in `64:ff9b::/96` always. `auto` asks DNS64 at start (RFC 7050), `none` for none"},
	{"HOOKD_RETENTION", "720h", "events, deliveries and attempts older than this are removed; at least `24h`, how long an `Idempotency-Key` is remembered. A GitHub, GitLab or Qovery source's copy of a delivery is recognised as long as its first event is kept: GitHub redelivers for 3 days, GitLab resends for 2, so below `72h` their later copies are delivered again"},
	{"HOOKD_READ_TIMEOUT", "30s", "time a client has to send a whole request, its headers within 5s; slower clients are disconnected"},
	{"HOOKD_API_RATE", "50", "requests a second each credential (API token; JWT issuer and subject) may make to the API, intake excepted; 429 with `Retry-After` past it, `0`: no limit. Per node"},
	{"HOOKD_API_BURST", "200", "requests a credential may make at once before `HOOKD_API_RATE` applies"},
	{"HOOKD_AUTH_FAILURE_RATE", "1", "failed authentications a second each client address (IPv6: each /64) may make; past it the address gets 429 with `Retry-After` before its credentials are looked up, `0`: no limit. Per node"},
	{"HOOKD_AUTH_FAILURE_BURST", "20", "failed authentications an address may make at once before `HOOKD_AUTH_FAILURE_RATE` applies"},
	{"HOOKD_INTAKE_RATE", "100", "deployment events a second each organization may report; 429 with `Retry-After` past it, `0`: no limit. Per node"},
	{"HOOKD_INTAKE_BURST", "1000", "events an organization may report at once before `HOOKD_INTAKE_RATE` applies"},
	{"HOOKD_MAX_WEBHOOKS_PER_ORG", "100", "webhooks an organization may have (409 past it); `0`: no limit"},
	{"HOOKD_MAX_SOURCES_PER_ORG", "100", "event sources an organization may have (409 past it), which bounds the unpaginated source list; `0`: no limit"},
	{"HOOKD_PPROF_ADDR", "", "serve pprof on this address (e.g. `127.0.0.1:6060`); off when empty"},
	{"HOOKD_ENCRYPTION_KEY", "", "keys encrypting webhook secrets and target URLs at rest: base64 of 32 bytes (`openssl rand -base64 32`), comma-separated, newest first; `HOOKD_ENCRYPTION_KEY_FILE` reads them from a file. Unset: SQLite creates `PATH.key` beside the database; PostgreSQL refuses to start. Rotate with `NEW,OLD` then `hookd migrate --reencrypt`"},
	{"GOGC", "200", "Go's garbage-collector target; hookd uses 200 when it is unset (Go's own default is 100): less CPU per delivery (−7 % in burst, −15 % draining a backlog) for about a fifth more peak memory; `100` for the smaller footprint"},
	{"OTEL_EXPORTER_OTLP_ENDPOINT", "", "send OpenTelemetry traces over OTLP/HTTP to this collector (e.g. `http://127.0.0.1:4318`, spans go to `/v1/traces`); off when empty. The exporter's other `OTEL_EXPORTER_OTLP_*` variables (headers, timeout, TLS) and `OTEL_SERVICE_NAME` apply"},
	{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "", "the full OTLP/HTTP traces URL, instead of `OTEL_EXPORTER_OTLP_ENDPOINT` (e.g. `http://127.0.0.1:4318/v1/traces`)"},
}

func loadConfig(getenv func(string) string) (*config, error) {
	get := func(name string) string {
		if v := getenv(name); v != "" {
			return v
		}
		for _, v := range variables {
			if v.name == name {
				return v.def
			}
		}
		return ""
	}
	c := &config{
		Addr:                  get("HOOKD_ADDR"),
		LogFormat:             get("HOOKD_LOG_FORMAT"),
		JWKSURL:               get("HOOKD_JWT_JWKS_URL"),
		JWTIssuer:             get("HOOKD_JWT_ISSUER"),
		JWTAudience:           get("HOOKD_JWT_AUDIENCE"),
		JWTOrganizationsClaim: get("HOOKD_JWT_ORGANIZATIONS_CLAIM"),
		PprofAddr:             get("HOOKD_PPROF_ADDR"),
	}
	var err error
	fail := func(name string, e error) error { return fmt.Errorf("%s: %w", name, e) }
	// A _FILE variant hookd does not read (HOOKD_ADDR_FILE, say) would
	// leave the variable at its default.
	for _, v := range variables {
		if !slices.Contains(fileVariables, v.name) && getenv(v.name+"_FILE") != "" {
			return nil, fail(v.name+"_FILE", fmt.Errorf("hookd reads no such variable: set %s itself (only %s have a _FILE variant)",
				v.name, strings.Join(fileVariables, ", ")))
		}
	}
	if c.Role, err = parseRole(get("HOOKD_ROLE")); err != nil {
		return nil, fail("HOOKD_ROLE", err)
	}
	// The database's URLs hold its password: they may come from files,
	// as container secrets are given.
	databaseURL, err := secretValue(getenv, "HOOKD_DATABASE_URL")
	if err != nil {
		return nil, err
	}
	if c.Database, err = parseDatabaseURL(cmp.Or(databaseURL, get("HOOKD_DATABASE_URL"))); err != nil {
		return nil, fail("HOOKD_DATABASE_URL", err)
	}
	if c.DatabaseListenURL, err = secretValue(getenv, "HOOKD_DATABASE_LISTEN_URL"); err != nil {
		return nil, err
	}
	// Checked here: a wrong one would otherwise only be logged, every 5s,
	// while the nodes fall back to polling.
	if u := c.DatabaseListenURL; u != "" {
		if backend, _, _ := splitDatabaseURL(u); backend != backendPostgres {
			return nil, fail("HOOKD_DATABASE_LISTEN_URL", errors.New("must start with postgres://"))
		}
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return nil, fail("HOOKD_LOG_FORMAT", fmt.Errorf("must be text or json, not %q", c.LogFormat))
	}
	if err := c.LogLevel.UnmarshalText([]byte(get("HOOKD_LOG_LEVEL"))); err != nil {
		return nil, fail("HOOKD_LOG_LEVEL", fmt.Errorf("must be debug, info, warn or error"))
	}
	secret, err := secretValue(getenv, "HOOKD_JWT_HS256_SECRET")
	if err != nil {
		return nil, err
	}
	c.JWTSecret = []byte(secret)
	keys, err := secretValue(getenv, "HOOKD_ENCRYPTION_KEY")
	if err != nil {
		return nil, err
	}
	if c.EncryptionKeys, err = secrets.ParseKeys(keys); err != nil {
		return nil, fail("HOOKD_ENCRYPTION_KEY", err)
	}
	durations := []struct {
		name string
		dst  *time.Duration
	}{
		{"HOOKD_DELIVERY_TIMEOUT", &c.DeliveryTimeout},
		{"HOOKD_DISABLE_AFTER", &c.DisableAfter},
		{"HOOKD_RETENTION", &c.Retention},
		{"HOOKD_READ_TIMEOUT", &c.ReadTimeout},
		{"HOOKD_JWT_JWKS_REFRESH", &c.JWKSRefresh},
	}
	for _, d := range durations {
		if *d.dst, err = time.ParseDuration(get(d.name)); err != nil || *d.dst <= 0 {
			return nil, fail(d.name, fmt.Errorf("must be a positive duration such as 15s or 2h, not %q", get(d.name)))
		}
	}
	// Retention takes an event with its Idempotency-Key: sooner than the
	// key's window, a retried request would be accepted, and delivered,
	// again. A source's delivery ids are kept with their events
	// (webhook.KeyKept), so retention alone bounds them; it is not held
	// to their tools' redelivery days (GitHub's 3): the sources are in the
	// database, and an installation without one would be refused for
	// nothing. The table's text says what a shorter one costs.
	if c.Retention < webhook.IdempotencyWindow {
		return nil, fail("HOOKD_RETENTION", fmt.Errorf("must be at least %gh, how long an Idempotency-Key is remembered, not %q",
			webhook.IdempotencyWindow.Hours(), get("HOOKD_RETENTION")))
	}
	// The JWKS is fetched at every tick: 5ms for 5m would ask the identity
	// provider two hundred times a second from every node.
	if c.JWKSRefresh < auth.MinJWKSRefresh {
		return nil, fail("HOOKD_JWT_JWKS_REFRESH", fmt.Errorf("must be at least %v, not %q", auth.MinJWKSRefresh, get("HOOKD_JWT_JWKS_REFRESH")))
	}
	// Zero is allowed here: no grace, the old secret stops at once.
	if c.SecretRotationGrace, err = time.ParseDuration(get("HOOKD_SECRET_ROTATION_GRACE")); err != nil || c.SecretRotationGrace < 0 {
		return nil, fail("HOOKD_SECRET_ROTATION_GRACE", fmt.Errorf("must be a duration such as 24h, or 0 for no grace, not %q", get("HOOKD_SECRET_ROTATION_GRACE")))
	}
	if c.RetrySchedule, err = webhook.ParseSchedule(get("HOOKD_RETRY_SCHEDULE")); err != nil {
		return nil, fail("HOOKD_RETRY_SCHEDULE", err)
	}
	// Intake sends a new delivery at once (or queues it due at the
	// event's time): a first delay would be silently ignored.
	if c.RetrySchedule[0] != 0 {
		return nil, fail("HOOKD_RETRY_SCHEDULE", fmt.Errorf("must start with 0s: the first attempt is made as the event is accepted, not %q", get("HOOKD_RETRY_SCHEDULE")))
	}
	if c.MaxInflightPerWebhook, err = strconv.Atoi(get("HOOKD_MAX_INFLIGHT_PER_WEBHOOK")); err != nil || c.MaxInflightPerWebhook < 1 {
		return nil, fail("HOOKD_MAX_INFLIGHT_PER_WEBHOOK", fmt.Errorf("must be a whole number of at least 1"))
	}
	rates := []struct {
		name string
		dst  *float64
	}{
		{"HOOKD_API_RATE", &c.APIRate},
		{"HOOKD_AUTH_FAILURE_RATE", &c.AuthFailureRate},
		{"HOOKD_INTAKE_RATE", &c.IntakeRate},
	}
	for _, r := range rates {
		// ParseFloat takes "NaN", which no comparison catches below.
		if *r.dst, err = strconv.ParseFloat(get(r.name), 64); err != nil || !(*r.dst >= 0) || math.IsInf(*r.dst, 0) {
			return nil, fail(r.name, fmt.Errorf("must be a number of requests a second such as 20 or 0.5 (0: no limit), not %q", get(r.name)))
		}
	}
	counts := []struct {
		name string
		dst  *int
		min  int
	}{
		{"HOOKD_API_BURST", &c.APIBurst, 1},
		{"HOOKD_AUTH_FAILURE_BURST", &c.AuthFailureBurst, 1},
		{"HOOKD_INTAKE_BURST", &c.IntakeBurst, 1},
		{"HOOKD_MAX_WEBHOOKS_PER_ORG", &c.MaxWebhooksPerOrg, 0},
		{"HOOKD_MAX_SOURCES_PER_ORG", &c.MaxSourcesPerOrg, 0},
	}
	for _, n := range counts {
		if *n.dst, err = strconv.Atoi(get(n.name)); err != nil || *n.dst < n.min {
			return nil, fail(n.name, fmt.Errorf("must be a whole number of at least %d, not %q", n.min, get(n.name)))
		}
	}
	if v := get("HOOKD_ALLOWED_TARGET_CIDRS"); v != "" {
		if c.AllowedTargetCIDRs, err = delivery.ParseCIDRs(v); err != nil {
			return nil, fail("HOOKD_ALLOWED_TARGET_CIDRS", err)
		}
	}
	switch v := get("HOOKD_NAT64_PREFIXES"); v {
	case "auto":
		c.DiscoverNAT64 = true
	case "none":
	default:
		if c.NAT64Prefixes, err = delivery.ParseNAT64Prefixes(v); err != nil {
			return nil, fail("HOOKD_NAT64_PREFIXES", fmt.Errorf("%w; or auto, or none", err))
		}
	}
	if c.OTLPTracesURL, err = otlpTracesURL(get); err != nil {
		return nil, err
	}
	if c.OTLPTracesURL != "" {
		for _, name := range []string{"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS"} {
			if err := checkOTLPHeaders(get(name)); err != nil {
				return nil, fail(name, err)
			}
		}
	}
	return c, nil
}

// role is what a node does, from HOOKD_ROLE.
type role int

const (
	// roleAll serves the API, commits events and delivers them.
	roleAll role = iota
	// roleAPI serves the API and commits events; deliveries wait in the
	// queue for a node that delivers.
	roleAPI
)

func parseRole(s string) (role, error) {
	switch s {
	case "all":
		return roleAll, nil
	case "api":
		return roleAPI, nil
	}
	return 0, fmt.Errorf("must be all or api, not %q", s)
}

// delivers reports whether the node runs a dispatcher: it then leases
// deliveries at intake, claims due ones and listens for other nodes'.
func (r role) delivers() bool { return r == roleAll }

func (r role) String() string {
	if r == roleAPI {
		return "api"
	}
	return "all"
}

// fileVariables are the variables read with secretValue, which a
// NAME_FILE variable may give instead.
var fileVariables = []string{"HOOKD_DATABASE_URL", "HOOKD_DATABASE_LISTEN_URL", "HOOKD_JWT_HS256_SECRET", "HOOKD_ENCRYPTION_KEY"}

// secretValue reads the file named by NAME_FILE when it is set, else
// NAME. The file wins: it is always a deliberate choice, while NAME may be
// a default set around hookd (the image sets HOOKD_DATABASE_URL to its
// SQLite file), which a mounted secret must override.
func secretValue(getenv func(string) string, name string) (string, error) {
	path := getenv(name + "_FILE")
	if path == "" {
		return getenv(name), nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s_FILE: %w", name, err)
	}
	// An empty file is a mistake (a Secret's key left blank), not "unset":
	// read as unset, it would give NAME's default or the image's value (a
	// SQLite file instead of the team's PostgreSQL, a key hookd makes).
	v := strings.TrimSpace(string(b))
	if v == "" {
		return "", fmt.Errorf("%s_FILE: %s is empty; it must hold the value of %s (unset %s_FILE to go without)", name, path, name, name)
	}
	return v, nil
}

// otlpTracesURL is the URL spans are posted to, following OpenTelemetry's
// rules: the traces endpoint as it is, or the general one plus /v1/traces.
func otlpTracesURL(get func(string) string) (string, error) {
	name, u := "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
	if u == "" {
		name, u = "OTEL_EXPORTER_OTLP_ENDPOINT", get("OTEL_EXPORTER_OTLP_ENDPOINT")
		if u == "" {
			return "", nil
		}
		u = strings.TrimRight(u, "/") + "/v1/traces"
	}
	parsed, err := url.Parse(u)
	if err != nil || (parsed.Scheme != "http" && parsed.Scheme != "https") || parsed.Host == "" {
		return "", fmt.Errorf("%s: must be an http:// or https:// URL, not %q", name, webhook.RedactedURL(get(name)))
	}
	return u, nil
}

// checkOTLPHeaders refuses what the OTLP exporter could not parse in an
// OTEL_EXPORTER_OTLP_*HEADERS value (comma-separated name=value pairs,
// values percent-encoded): the exporter would log the pair, a collector's
// token included, on stderr, and send traces without it. A name is an
// HTTP token (RFC 9110), as the exporter checks it. Values are never
// quoted here.
func checkOTLPHeaders(v string) error {
	if v == "" {
		return nil
	}
	for i, pair := range strings.Split(v, ",") {
		name, value, ok := strings.Cut(pair, "=")
		name = strings.TrimSpace(name)
		switch _, err := url.PathUnescape(value); {
		case !ok:
			return fmt.Errorf("header %d has no =: each is name=value, comma-separated (e.g. Authorization=Bearer%%20TOKEN); values are not shown", i+1)
		case !httpguts.ValidHeaderFieldName(name):
			return fmt.Errorf("header %d has no valid name before its = (letters, digits and !#$%%&'*+-.^_`|~); values are not shown", i+1)
		case err != nil:
			return fmt.Errorf("header %s: its value is not percent-encoded correctly (a space is %%20, a comma %%2C); values are not shown", name)
		}
	}
	return nil
}

// otherVariables are HOOKD_ variables that serve, migrate and token do
// not read but that are rightly in their environment: the client
// commands' (exported in the same shell) and those of the tests and the
// bench, whose hookd processes inherit them.
var otherVariables = []string{
	"HOOKD_URL", "HOOKD_TOKEN", "HOOKD_ORGANIZATION",
	"HOOKD_TEST_POSTGRES_URL", "HOOKD_E2E_NORACE", "HOOKD_SIZE_EVENTS", "HOOKD_SIZE_BATCH", "HOOKD_DELETE_DELIVERIES",
}

// serviceLink matches the variables Kubernetes gives every pod for each
// Service of its namespace (unless enableServiceLinks is false): the
// manifests' own Service, hookd, makes HOOKD_PORT, HOOKD_SERVICE_HOST and
// the like.
var serviceLink = regexp.MustCompile(`^[A-Z0-9_]+_(SERVICE_HOST|SERVICE_PORT(_[A-Z0-9_]+)?|PORT(_[0-9]+_(TCP|UDP|SCTP)(_PROTO|_PORT|_ADDR)?)?)$`)

// checkVariableNames refuses a HOOKD_ variable of environ (NAME=value)
// that hookd does not read but whose name is near one it does: hookd
// would run with that one at its default (HOOKD_DATABSE_URL: an empty
// SQLite file beside the team's PostgreSQL). The other unknown names are
// returned, to be warned of and ignored: refusing them would stop a
// rolled-back hookd on a newer one's variable, or a hookd deployed with
// HOOKD_ variables of the deployment's own. Values are never read: they
// may be secrets.
func checkVariableNames(environ []string) (ignored []string, err error) {
	var known []string
	for _, v := range variables {
		if strings.HasPrefix(v.name, "HOOKD_") {
			known = append(known, v.name)
		}
	}
	for _, name := range fileVariables {
		known = append(known, name+"_FILE")
	}
	var errs []error
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(strings.ToUpper(name), "HOOKD_") || slices.Contains(known, name) || slices.Contains(otherVariables, name) ||
			serviceLink.MatchString(name) {
			continue
		}
		// loadConfig says what is wrong with HOOKD_ADDR_FILE and the like.
		if base, ok := strings.CutSuffix(name, "_FILE"); ok && slices.ContainsFunc(variables, func(v variable) bool { return v.name == base }) {
			continue
		}
		meant, ok := nearestName(name, known)
		if !ok {
			ignored = append(ignored, name)
			continue
		}
		why := "hookd reads no such variable"
		if strings.EqualFold(name, meant) {
			why += " (names are case-sensitive)"
		}
		errs = append(errs, fmt.Errorf("%s: %s; did you mean %s? (hookd will not run with %s at its default)", name, why, meant, meant))
	}
	return ignored, errors.Join(errs...)
}

// nearestName is the name of known closest to name, if it is near enough
// to be what was meant: two letters wrong, missing, extra or swapped, or
// a short last word missing (HOOKD_DATABASE for HOOKD_DATABASE_URL).
// Case is ignored, so that hookd_addr finds HOOKD_ADDR.
func nearestName(name string, known []string) (string, bool) {
	upper := strings.ToUpper(name)
	best, bestDist := "", math.MaxInt
	for _, k := range known {
		d := editDistance(upper, k)
		if strings.HasPrefix(k, upper+"_") && len(k)-len(upper) <= 4 {
			d = min(d, 2)
		}
		if d < bestDist {
			best, bestDist = k, d
		}
	}
	return best, bestDist <= 2
}

// editDistance counts the letters to change, add, remove or swap with
// their neighbour to turn a into b (optimal string alignment).
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

// loadServerConfig is loadConfig for the commands that work on the
// database directly (migrate, token), with the variables' names checked
// first (checkVariableNames) and those ignored said on stderr.
func loadServerConfig(environ []string, stderr io.Writer) (*config, error) {
	ignored, err := checkVariableNames(environ)
	if err != nil {
		return nil, err
	}
	for _, name := range ignored {
		fmt.Fprintf(stderr, "hookd: ignoring %s: hookd reads no such variable\n", name)
	}
	return loadConfig(getenvOf(environ))
}

// getenvOf is os.Getenv over environ (NAME=value pairs). Of two pairs
// for one name the later wins, as in exec.Cmd's Env, so that a test can
// append to a base environment (os.Environ() itself holds no duplicates).
func getenvOf(environ []string) func(string) string {
	env := make(map[string]string, len(environ))
	for _, kv := range environ {
		if name, value, ok := strings.Cut(kv, "="); ok {
			env[name] = value
		}
	}
	return func(name string) string { return env[name] }
}

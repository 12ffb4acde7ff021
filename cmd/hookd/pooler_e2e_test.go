package main

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hookd/hookd/internal/store/postgres/pgtest"
)

// startPgBouncer starts Debian's pgbouncer on a free loopback port in
// transaction mode, in front of the server of dbURL, and returns dbURL
// through it. It skips t when pgbouncer is not installed.
func startPgBouncer(t *testing.T, dbURL string) string {
	t.Helper()
	bin, err := exec.LookPath("pgbouncer")
	if err != nil {
		if bin, err = exec.LookPath("/usr/sbin/pgbouncer"); err != nil {
			t.Skip("pgbouncer is not installed (apt-get install pgbouncer): the pooler test is skipped")
		}
	}
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dir := t.TempDir()
	// pgbouncer will not run as root; the user it runs as must read this.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	user := u.User.Username()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	users := write("users.txt", fmt.Sprintf("%q \"\"\n", user))
	ini := write("pgbouncer.ini", fmt.Sprintf(`[databases]
* = host=%s port=%s
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = trust
auth_file = %s
pool_mode = transaction
max_client_conn = 200
default_pool_size = 20
ignore_startup_parameters = extra_float_digits
`, u.Hostname(), u.Port(), port, users))
	args := []string{ini}
	if os.Geteuid() == 0 {
		args = []string{"-u", "nobody", ini}
	}
	cmd := exec.Command(bin, args...)
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("pgbouncer logs:\n%s", logs.String())
		}
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	waitFor(t, 10*time.Second, "pgbouncer to listen", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	u.Host = addr
	q := u.Query()
	// Statements that survive transaction pooling: no named prepared
	// statements kept on a server connection between transactions.
	q.Set("default_query_exec_mode", "exec")
	u.RawQuery = q.Encode()
	return u.String()
}

// Behind PgBouncer in transaction mode, two nodes create webhooks and
// deliver events end to end; notifications come on a direct connection.
func TestPgBouncerTransactionMode(t *testing.T) {
	direct := pgtest.URL(t)
	pooled := startPgBouncer(t, direct)
	tg := newTarget(t)
	env := deliveryEnv(pooled, map[string]string{"HOOKD_DATABASE_LISTEN_URL": direct})
	a := startServer(t, env)
	b := startServer(t, deliveryEnv(pooled, nil)) // this one polls
	o := newOrg(t, a, pooled)
	o.createWebhook(map[string]any{"kind": "STANDARD", "target_url": tg.URL + "/pooled", "events": []string{"DEPLOYMENT_STARTED"}})
	ob := &org{t: t, id: o.id, api: call{t: t, base: b.URL, auth: o.api.auth}}
	ob.createWebhook(map[string]any{"kind": "STANDARD", "target_url": tg.URL + "/pooled", "events": []string{"DEPLOYMENT_STARTED"}})
	const events = 50
	for i := range events {
		c := o
		if i%2 == 1 {
			c = ob
		}
		var got accepted
		if st, _, body := c.api.do("POST", c.path("/deployment-event"), deploymentEvent("DEPLOYMENT_STARTED", "pooled", "PRODUCTION"), &got); st != 202 {
			t.Fatalf("event %d through the pooler: %d %s", i, st, body)
		}
		if got.Deliveries != 2 {
			t.Fatalf("event %d: %d deliveries, want 2", i, got.Deliveries)
		}
	}
	tg.waitCount(t, "/pooled", 2*events, 60*time.Second)
	for _, s := range []*server{a, b} {
		if l := s.logs.String(); strings.Contains(l, "42P05") || strings.Contains(l, "level=ERROR") {
			t.Errorf("errors behind the pooler:\n%s", l)
		}
	}
}

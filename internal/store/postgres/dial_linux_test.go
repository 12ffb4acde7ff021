package postgres

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sys/unix"
)

// A connection to PostgreSQL is made within connectTimeout (or the URL's
// connect_timeout), and its socket drops data left unacknowledged for
// userTimeout and probes an idle peer, so a partition that drops packets
// fails the connection instead of holding it for the kernel's minutes.
func TestConnectionsGuarded(t *testing.T) {
	for url, want := range map[string]time.Duration{
		"postgres://hookd@127.0.0.1:5432/hookd":                   connectTimeout,
		"postgres://hookd@127.0.0.1:5432/hookd?connect_timeout=3": 3 * time.Second,
	} {
		cfg, err := pgxpool.ParseConfig(url)
		if err != nil {
			t.Fatal(err)
		}
		guardConnections(&cfg.ConnConfig.Config)
		if got := cfg.ConnConfig.ConnectTimeout; got != want {
			t.Errorf("%s: connect timeout %s, want %s", url, got, want)
		}
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg, err := pgxpool.ParseConfig("postgres://hookd@" + ln.Addr().String() + "/hookd")
	if err != nil {
		t.Fatal(err)
	}
	guardConnections(&cfg.ConnConfig.Config)
	conn, err := cfg.ConnConfig.DialFunc(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	raw, err := conn.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct{ level, opt, value int }{
		"TCP_USER_TIMEOUT (ms)": {unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(userTimeout.Milliseconds())},
		"SO_KEEPALIVE":          {unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1},
		"TCP_KEEPIDLE (s)":      {unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, int(keepaliveIdle.Seconds())},
		"TCP_KEEPINTVL (s)":     {unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, int(keepaliveInterval.Seconds())},
		"TCP_KEEPCNT":           {unix.IPPROTO_TCP, unix.TCP_KEEPCNT, keepaliveCount},
	}
	raw.Control(func(fd uintptr) {
		for name, o := range want {
			got, err := unix.GetsockoptInt(int(fd), o.level, o.opt)
			if err != nil || got != o.value {
				t.Errorf("%s: %d (%v), want %d", name, got, err, o.value)
			}
		}
	})
}

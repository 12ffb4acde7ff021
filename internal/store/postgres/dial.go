package postgres

import (
	"net"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// A network partition that drops packets (a firewall, a host that died)
// sends no reset: left to TCP, a connection waiting for the server
// notices nothing for minutes (the kernel's retransmissions give up after
// about 15), a connection being made waits as long, and an idle one in
// the pool is found dead only when used. hookd bounds its own waits on
// the delivery path (intake's commit, the claim, the outcomes, the
// renewals); these settings make the connections themselves fail, so the
// pool drops them and makes new ones once the network is back, whatever
// the call that waits on them.
const (
	// connectTimeout bounds making a connection, its TLS and
	// authentication included, unless the URL sets connect_timeout. The
	// pool makes connections in the background of the calls that asked
	// for them and keeps their place meanwhile: without a bound, attempts
	// caught by a partition would hold every place of the pool after it
	// ended. Connecting takes milliseconds, a second across regions.
	connectTimeout = 10 * time.Second
	// pingTimeout bounds the ping the pool makes before handing out a
	// connection idle for more than a second, unless the URL sets
	// pool_ping_timeout: one that does not answer is dropped and another
	// one tried, rather than waited on for as long as the caller waits.
	pingTimeout = 5 * time.Second
	// userTimeout is how long data sent may go unacknowledged (the
	// kernel's acknowledgement: a slow query does not count) before the
	// kernel drops the connection (TCP_USER_TIMEOUT, on Linux). Keepalive
	// probes, after keepaliveIdle of silence and every keepaliveInterval,
	// find an idle connection dead too: once probes go unanswered for
	// userTimeout on Linux, after keepaliveCount of them elsewhere. Far
	// above any round trip of a working network, and short enough that a
	// listener or an API read on a dead connection fails within a minute.
	userTimeout       = 30 * time.Second
	keepaliveIdle     = 15 * time.Second
	keepaliveInterval = 5 * time.Second
	keepaliveCount    = int(userTimeout / keepaliveInterval)
)

// guardConnections gives cfg the bounds above, keeping a connect_timeout
// the URL set.
func guardConnections(cfg *pgconn.Config) {
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = connectTimeout
	}
	d := &net.Dialer{
		KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: keepaliveIdle, Interval: keepaliveInterval, Count: keepaliveCount},
		Control:         setUserTimeout,
	}
	cfg.DialFunc = d.DialContext
}

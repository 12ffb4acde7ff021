//go:build !linux

package postgres

import "syscall"

// setUserTimeout does nothing where TCP_USER_TIMEOUT is not known: the
// keepalive probes still find a dead idle connection.
func setUserTimeout(network, address string, c syscall.RawConn) error { return nil }

//go:build unix

package sqlite

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// flock is unix.Flock, but in tests of a file system without locks.
var flock = unix.Flock

// tryLock takes f's flock, held until f is closed, if no other open file
// holds it; held reports that another does.
func tryLock(f *os.File) (held bool, err error) {
	for {
		err = flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		switch {
		case err == nil:
			return false, nil
		case errors.Is(err, unix.EWOULDBLOCK):
			return true, nil
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.ENOLCK), errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, unix.ENOSYS), errors.Is(err, unix.EINVAL):
			// A file system without locks (an NFS mount without its lock
			// service, some FUSE ones).
			return false, fmt.Errorf("%w: %w", ErrNoServerLock, err)
		}
		return false, err
	}
}

//go:build !unix

package sqlite

import "os"

// tryLock takes no lock where flock is not known: one server per file is
// then the operator's to keep.
func tryLock(*os.File) (held bool, err error) { return false, ErrNoServerLock }

package main

import (
	"golang.org/x/sys/unix"
)

// harden keeps secrets out of core dumps and away from other processes of
// the same user: no core files (RLIMIT_CORE 0) and not dumpable
// (PR_SET_DUMPABLE 0, which also refuses ptrace attach by non-root).
// Failures are returned for the caller to log; samd still serves, since a
// container may forbid prctl.
func harden() error {
	if err := unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{Cur: 0, Max: 0}); err != nil {
		return err
	}
	return unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
}

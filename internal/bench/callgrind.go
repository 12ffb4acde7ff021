package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Under callgrind (Config.Callgrind) each hookd runs in valgrind, which
// counts the instructions it executes: the same count for the same work
// whatever else the machine runs, where CPU seconds on a shared VM move
// by a third from hour to hour. The bench zeroes the count as a
// scenario's load starts and reads it once every delivery has arrived,
// so a scenario's figure is hookd's work for its deliveries, setup
// aside.
//
// hookd runs on one P there (GOMAXPROCS=1): valgrind runs one thread at a
// time, so a Go scheduler thread spinning for work on an idle P spins
// through whole time slices and its count says more about valgrind than
// about hookd (an idle hookd counted 45 million instructions a second
// with two, under a million with one). Go's asynchronous preemption is
// off too (GODEBUG=asyncpreemptoff=1): callgrind trips over its signals.
// Valgrind makes hookd some fifty times slower, so scenarios need far
// smaller loads (hundreds to thousands of events, a few dozen a second),
// and the rates, latencies, memory and CPU it reports are valgrind's.
// It slows hookd's requests more than its intake, too: a burst's
// deliveries would wait for room behind HOOKD_MAX_INFLIGHT_PER_WEBHOOK and
// go through the queue, claims and all, which they do not outside
// valgrind (a third more instructions per delivery), so unless exported
// the limit is 64 there.

// callgrindCommand is the command that starts hookd serve under callgrind.
func (r *runner) callgrindCommand() *exec.Cmd {
	// Quiet: valgrind's own lines would count as hookd's log.
	return exec.Command("valgrind", "--tool=callgrind", "--quiet",
		"--callgrind-out-file="+filepath.Join(r.cfg.Callgrind, "callgrind.%p.out"),
		r.cfg.Executable, "serve")
}

// setCallgrindEnv adds to env what hookd needs under callgrind; see above.
func (r *runner) setCallgrindEnv(env map[string]string) {
	env["GOMAXPROCS"] = "1"
	env["GODEBUG"] = "asyncpreemptoff=1"
	if !r.exported("HOOKD_MAX_INFLIGHT_PER_WEBHOOK") {
		env["HOOKD_MAX_INFLIGHT_PER_WEBHOOK"] = "64"
	}
}

// zeroInstructions starts a process's count again from zero.
func zeroInstructions(pid int) error {
	return callgrindControl("-z", pid)
}

// instructions has callgrind write out the process's count since the last
// zero and returns it.
func (r *runner) instructions(pid int) (int64, error) {
	before, _ := filepath.Glob(filepath.Join(r.cfg.Callgrind, fmt.Sprintf("callgrind.%d.out.*", pid)))
	if err := callgrindControl("-d", pid); err != nil {
		return 0, err
	}
	after, err := filepath.Glob(filepath.Join(r.cfg.Callgrind, fmt.Sprintf("callgrind.%d.out.*", pid)))
	if err != nil {
		return 0, err
	}
	for _, f := range after {
		if !slices.Contains(before, f) {
			return readTotals(f)
		}
	}
	return 0, fmt.Errorf("callgrind wrote no profile of process %d in %s", pid, r.cfg.Callgrind)
}

func callgrindControl(op string, pid int) error {
	out, err := exec.Command("callgrind_control", op, strconv.Itoa(pid)).CombinedOutput()
	if err != nil {
		return fmt.Errorf("callgrind_control %s %d: %v: %s", op, pid, err, bytes.TrimSpace(out))
	}
	return nil
}

// readTotals reads the instructions counted in a callgrind profile: its
// "summary:" line, near the top (or "totals:", at the end).
func readTotals(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		for _, prefix := range []string{"summary:", "totals:"} {
			if v, ok := strings.CutPrefix(line, prefix); ok {
				return parseCount(v, path)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("no totals in callgrind profile " + path)
}

// parseCount reads the first number of a totals line: instructions, the
// event callgrind counts by default.
func parseCount(v, path string) (int64, error) {
	fields := strings.Fields(v)
	if len(fields) == 0 {
		return 0, errors.New("empty totals in callgrind profile " + path)
	}
	n, err := strconv.ParseInt(fields[0], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("callgrind profile %s: totals %q: %v", path, fields[0], err)
	}
	return n, nil
}

package bench

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// readTotals takes callgrind's count from the summary line near the top
// of a profile, or from the totals line at its end, and says what is
// wrong with a profile that has neither.
func TestReadTotals(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	for _, tt := range []struct {
		name, body string
		want       int64
		err        string
	}{
		{"summary", "# callgrind format\nversion: 1\ncmd: hookd serve\nevents: Ir\nsummary: 7748418\n\nfn=(1) main\n0 12\ntotals: 7748418\n", 7748418, ""},
		{"totals only", "events: Ir\nfn=(1) main\n0 12\ntotals: 12 3\n", 12, ""},
		{"neither", "events: Ir\nfn=(1) main\n0 12\n", 0, "no totals"},
		{"empty", "events: Ir\nsummary:\n", 0, "empty totals"},
		{"not a number", "events: Ir\nsummary: many\n", 0, `totals "many"`},
	} {
		got, err := readTotals(write(tt.name, tt.body))
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: %d, %v; want an error saying %q", tt.name, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s: %d, %v; want %d", tt.name, got, err, tt.want)
		}
	}
	if _, err := readTotals(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing profile read without an error")
	}
}

func TestCount(t *testing.T) {
	for n, want := range map[int64]string{0: "-", 999: "999", 1000: "1k", 993_412: "993k", 999_499: "999k", 999_500: "1.00M",
		1_034_567: "1.03M", 9_994_999: "9.99M", 9_995_000: "10M", 12_345_678: "12M"} {
		if got := count(n); got != want {
			t.Errorf("count(%d) = %q, want %q", n, got, want)
		}
	}
}

// Under callgrind, hookd prints a line because of the GODEBUG the bench
// gives it, in pieces as Go's print writes them; it is not counted as
// hookd's news, nor shown as its last word, and the rest still is.
func TestTailIgnores(t *testing.T) {
	logs := &tail{max: 64 << 10, ignore: (&runner{cfg: Config{}}).setCallgrindEnv(map[string]string{})}
	for _, s := range []string{`GODEBUG sys/cpu: unknown cpu feature "`, "rdtscp", "\"\n",
		`{"level":"WARN","msg":"a"}` + "\n", `{"level":"WARN",`, `"msg":"b"}` + "\n"} {
		logs.Write([]byte(s))
	}
	if n, last := logs.Lines(), logs.Last(); n != 2 || last != `{"level":"WARN","msg":"b"}` {
		t.Errorf("logs: %d lines, the last %q; want 2, the last b", n, last)
	}
	if strings.Contains(logs.String(), "rdtscp") {
		t.Errorf("logs keep the line the bench caused:\n%s", logs.String())
	}

	// Kept to its last max bytes, the line being written included, even
	// when that line is the one to drop and arrives while the tail is full.
	small := &tail{max: 32, ignore: logs.ignore}
	small.Write([]byte("one\ntwo\nthree\nfour\nfive\nsix\nseven\n"))
	for _, s := range []string{`GODEBUG sys/cpu: unknown cpu feature "`, "rdtscp", "\"\n", "eight\n"} {
		small.Write([]byte(s))
	}
	if got, want := small.String(), "three\nfour\nfive\nsix\nseven\neight\n"; got != want || small.Lines() != 8 {
		t.Errorf("a full tail after the dropped line holds %q (%d lines), want %q (8 lines)", got, small.Lines(), want)
	}

	// A blank line is a line, and the lines after it are counted too.
	blank := &tail{max: 64, ignore: logs.ignore}
	blank.Write([]byte("a\n\nb\n"))
	if n, last := blank.Lines(), blank.Last(); n != 3 || last != "b" {
		t.Errorf("after a blank line: %d lines, the last %q; want 3, the last b", n, last)
	}
}

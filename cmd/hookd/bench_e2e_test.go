package main

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hookd/hookd/internal/store/postgres/pgtest"
)

// TestBenchNodes checks `hookd bench --nodes`: refused where several
// nodes cannot share a database, and on PostgreSQL a run whose JSON says
// how many nodes ran and what each accepted.
func TestBenchNodes(t *testing.T) {
	refused := []struct {
		name string
		args []string
		want string
	}{
		{"SQLite by default", []string{"--nodes", "2"}, "--database-url postgres://"},
		{"SQLite named", []string{"--nodes", "2", "--database-url", "sqlite:" + t.TempDir()}, "--database-url postgres://"},
		{"with --url", []string{"--nodes", "2", "--url", "http://127.0.0.1:1", "--token", "hkd_x", "--organization", "00000000-0000-0000-0000-000000000001"}, "with --url"},
		{"zero", []string{"--nodes", "0"}, "must be positive"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, err := hookd(t, nil, append([]string{"bench", "--scenarios", "burst"}, tt.args...)...)
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(errOut, tt.want) {
				t.Errorf("hookd bench %s: %v, stderr %q; want exit 2 and %q", strings.Join(tt.args, " "), err, errOut, tt.want)
			}
			if out != "" {
				t.Errorf("a refused bench printed %q", out)
			}
		})
	}

	t.Run("postgres", func(t *testing.T) {
		admin := os.Getenv(pgtest.URLEnv)
		if admin == "" {
			t.Skip("needs PostgreSQL: run it with " + pgtest.URLEnv + "=postgres://postgres@127.0.0.1:5432/postgres")
		}
		path := filepath.Join(t.TempDir(), "bench.json")
		// With a pool setting, as hookd's own URL may have.
		out, errOut, err := hookd(t, nil, "bench", "--quick", "--scenarios", "burst", "--events", "200",
			"--database-url", pgtest.WithParam(admin, "pool_max_conns", "8"), "--nodes", "2", "--out", path)
		if err != nil {
			t.Fatalf("hookd bench: %v\nstdout: %s\nstderr: %s", err, out, errOut)
		}
		if !strings.Contains(out, "backend postgres, 2 nodes") {
			t.Errorf("the table does not say 2 nodes:\n%s", out)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var rep struct {
			Config struct {
				Nodes int `json:"nodes"`
			} `json:"config"`
			Results []struct {
				Error      string `json:"error"`
				Events     int    `json:"events"`
				Lost       int    `json:"lost"`
				NodeEvents []int  `json:"events_per_node"`
			} `json:"results"`
		}
		if err := json.Unmarshal(b, &rep); err != nil {
			t.Fatal(err)
		}
		if rep.Config.Nodes != 2 || len(rep.Results) != 1 {
			t.Fatalf("config.nodes %d, %d results; want 2 nodes, 1 result:\n%s", rep.Config.Nodes, len(rep.Results), b)
		}
		r := rep.Results[0]
		if r.Error != "" || r.Events != 200 || r.Lost != 0 || len(r.NodeEvents) != 2 || r.NodeEvents[0] == 0 || r.NodeEvents[1] == 0 {
			t.Errorf("burst: error %q, %d events, %d lost, per node %v; want 200 events, none lost, both nodes used", r.Error, r.Events, r.Lost, r.NodeEvents)
		}
	})
}

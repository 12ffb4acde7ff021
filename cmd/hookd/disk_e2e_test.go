package main

import (
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// mount runs mount(8) with args, skipping t when it cannot (not root, or
// no permission in this container), and undoes it when t ends.
func mount(t *testing.T, target string, args ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a read-only or small file system")
	}
	if out, err := exec.Command("mount", append(args, target)...).CombinedOutput(); err != nil {
		t.Skipf("cannot mount here: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", target).Run() })
}

// A SQLite file hookd cannot write (chmod a-w, or mounted read-only):
// serve refuses to start and says why, instead of serving errors.
func TestServeRefusesReadOnlyDatabase(t *testing.T) {
	file := filepath.Join(t.TempDir(), "hookd.db")
	env := map[string]string{"HOOKD_DATABASE_URL": "sqlite:" + file, "HOOKD_ADDR": "127.0.0.1:0"}
	if _, errOut, err := hookd(t, env, "migrate"); err != nil {
		t.Fatalf("migrate: %v\n%s", err, errOut)
	}
	// As root, chmod does not stop writes; a read-only bind mount of the
	// file over itself does, as chmod does for anyone else.
	mount(t, file, "--bind", file)
	if out, err := exec.Command("mount", "-o", "remount,bind,ro", file).CombinedOutput(); err != nil {
		t.Skipf("cannot remount read-only: %v: %s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, hookdBin, "serve")
	cmd.Env = environ(env)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("serve on a read-only database did not exit:\n%s", out)
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) || !strings.Contains(string(out), "the database cannot be written") {
		t.Fatalf("serve on a read-only database: %v, want an exit saying the database cannot be written:\n%s", err, out)
	}
	if strings.Contains(string(out), "hookd serving") {
		t.Fatalf("serve said it was serving on a read-only database:\n%s", out)
	}
}

// fill writes to a file in dir until the file system is full, and
// returns the file (removing it frees the space).
func fill(t *testing.T, dir string) string {
	t.Helper()
	name := filepath.Join(dir, "filler")
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 16<<10)
	for range 1 << 12 {
		if _, err := f.Write(chunk); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return name
			}
			t.Fatal(err)
		}
	}
	t.Fatal("the file system never filled up")
	return ""
}

// When the disk fills up, intake answers 503 with Retry-After (never 500),
// /readyz fails, the log does not flood, and once there is space again
// intake and readiness come back.
func TestFullDisk(t *testing.T) {
	dir := t.TempDir()
	mount(t, dir, "-t", "tmpfs", "-o", "size=8m", "tmpfs")
	dbURL := "sqlite:" + filepath.Join(dir, "hookd.db")
	tg := newTarget(t)
	srv := startServer(t, deliveryEnv(dbURL, map[string]string{"HOOKD_INTAKE_RATE": "0", "HOOKD_LOG_LEVEL": "info"}))
	o := newOrg(t, srv, dbURL)
	o.createWebhook(map[string]any{"kind": "STANDARD", "target_url": tg.URL + "/full", "events": []string{"DEPLOYMENT_STARTED"}})
	filler := fill(t, dir)

	post := func() (int, http.Header) {
		st, h, _, err := o.api.doQuiet("POST", o.path("/deployment-event"), deploymentEvent("DEPLOYMENT_STARTED", "full", "PRODUCTION"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if st != 202 && st != 503 {
			t.Fatalf("intake on a full disk answered %d, want 202 or 503", st)
		}
		return st, h
	}
	refused := 0
	for i := 0; i < 2000 && refused < 20; i++ {
		if st, h := post(); st == 503 {
			refused++
			if h.Get("Retry-After") == "" {
				t.Fatal("503 without Retry-After")
			}
		}
	}
	if refused == 0 {
		t.Fatal("2000 events accepted on a full disk: the test proves nothing")
	}
	if st, _, _, _ := o.api.doQuiet("GET", "/readyz", nil, nil); st != 503 {
		t.Errorf("/readyz = %d on a full disk, want 503", st)
	}
	if n := strings.Count(srv.logs.String(), "level=ERROR"); n > 10 {
		t.Errorf("%d ERROR lines while the disk was full: the log floods", n)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "intake to accept events again", func() bool { st, _ := post(); return st == 202 })
	last := 0
	waitFor(t, 30*time.Second, "/readyz to answer 200 again", func() bool {
		st, _, body, _ := o.api.doQuiet("GET", "/readyz", nil, nil)
		if st != last {
			t.Logf("/readyz: %d %s", st, body)
			last = st
		}
		return st == 200
	})
}

// A disk that fills while deliveries are in flight and queued: their
// outcomes, claims and releases fail meanwhile, and once there is space
// again every event that got a 202, before or during, reaches the target.
func TestFullDiskDeliversWhatItAccepted(t *testing.T) {
	dir := t.TempDir()
	mount(t, dir, "-t", "tmpfs", "-o", "size=8m", "tmpfs")
	dbURL := "sqlite:" + filepath.Join(dir, "hookd.db")
	tg := newTarget(t)
	tg.delay = 200 * time.Millisecond // a backlog in memory and in the queue when the disk fills
	srv := startServer(t, crashEnv(dbURL))
	o := newOrg(t, srv, dbURL)
	o.createWebhook(map[string]any{"kind": "STANDARD", "target_url": tg.URL + "/crash", "events": []string{"DEPLOYMENT_STARTED"}})

	stop := make(chan struct{})
	var n atomic.Int64
	done := pour(t, o, func() []string { return []string{srv.URL} }, 5*time.Millisecond, stop, &n)
	waitFor(t, 60*time.Second, "100 accepted events", func() bool { return n.Load() >= 100 })
	filler := fill(t, dir)
	full := n.Load()
	// Full until a batch of outcomes has failed all its tries: those
	// deliveries stay unrecorded, to be sent again once their leases end.
	gaveUp := regexp.MustCompile(`recording delivery outcomes failed.* try=3`)
	waitFor(t, 30*time.Second, "a batch of outcomes to fail all its tries on the full disk", func() bool {
		return gaveUp.MatchString(srv.logs.String())
	})
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "more events once there is space", func() bool { return n.Load() >= full+50 })
	close(stop)
	ids := done()
	dups := waitAllDelivered(t, tg, ids, 90*time.Second)
	t.Logf("%d events accepted (%d before the disk filled), all delivered; %d duplicates", len(ids), full, dups)
}

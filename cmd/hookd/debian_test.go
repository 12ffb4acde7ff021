package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// debStubs stands in for systemd and the user database when the
// maintainer scripts run: systemctl, getent and useradd keep their state
// as files in dir (enabled, active, user, holding its primary group, and
// group) and log each call. useradd fails as the real one does: with
// --user-group when the group exists, with --gid when it does not.
const debStubs = `#!/bin/sh
s=$STUB_STATE
echo "$(basename "$0") $*" >>"$s/log"
case "$(basename "$0") $*" in
"getent passwd hookd") [ -e "$s/user" ] || exit 2 ;;
"getent group hookd") [ -e "$s/group" ] || exit 2 ;;
"useradd --system --user-group "*" hookd")
	if [ -e "$s/group" ]; then echo "useradd: group hookd exists - if you want to add this user to that group, use -g." >&2; exit 9; fi
	touch "$s/group"; echo hookd >"$s/user" ;;
"useradd --system --gid hookd "*" hookd")
	if [ ! -e "$s/group" ]; then echo "useradd: group 'hookd' does not exist" >&2; exit 6; fi
	echo hookd >"$s/user" ;;
"systemctl is-enabled --quiet hookd.service") [ -e "$s/enabled" ] ;;
"systemctl enable hookd.service") touch "$s/enabled" ;;
"systemctl disable hookd.service") rm -f "$s/enabled" ;;
"systemctl start hookd.service" | "systemctl restart hookd.service") touch "$s/active" "$s/started" ;;
"systemctl try-restart hookd.service") [ ! -e "$s/active" ] || touch "$s/started" ;;
"systemctl stop hookd.service") rm -f "$s/active" ;;
"systemctl daemon-reload") ;;
*) echo "unexpected call: $(basename "$0") $*" >&2; exit 1 ;;
esac
`

// debHost is a machine the package's maintainer scripts run on, as dpkg
// runs them, with systemd running (/run/systemd/system exists, in a mount
// namespace of the test's own) and its state kept by debStubs.
type debHost struct {
	t           *testing.T
	state, path string
}

func newDebHost(t *testing.T) *debHost {
	t.Helper()
	if out, err := exec.Command("unshare", "-m", "true").CombinedOutput(); err != nil {
		t.Skipf("needs a mount namespace of its own (root, unshare): %v %s", err, out)
	}
	h := &debHost{t: t, state: t.TempDir()}
	bin := t.TempDir()
	// The rest of the user database's commands too, so that a script
	// calling one fails the test ("unexpected call") instead of changing
	// the machine's users.
	for _, name := range []string{"systemctl", "getent", "useradd", "userdel", "usermod", "groupadd", "groupdel", "adduser", "deluser", "addgroup", "delgroup"} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(debStubs), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	h.path = bin + ":" + os.Getenv("PATH")
	return h
}

// run runs a maintainer script with dpkg's arguments.
func (h *debHost) run(script string, args ...string) {
	h.t.Helper()
	os.Remove(filepath.Join(h.state, "started"))
	sh := `mount -t tmpfs tmpfs /run/systemd && mkdir /run/systemd/system && exec sh "$@"`
	cmd := exec.Command("unshare", append([]string{"-m", "sh", "-c", sh, "sh", filepath.Join("../../deploy/debian", script)}, args...)...)
	cmd.Env = append(os.Environ(), "PATH="+h.path, "STUB_STATE="+h.state)
	if out, err := cmd.CombinedOutput(); err != nil {
		h.t.Fatalf("%s %s: %v\n%s", script, strings.Join(args, " "), err, out)
	}
}

func (h *debHost) has(what string) bool {
	_, err := os.Stat(filepath.Join(h.state, what))
	return err == nil
}

// wantUser checks the host has the hookd user, its primary group the
// hookd group, after step.
func (h *debHost) wantUser(step string) {
	h.t.Helper()
	group, err := os.ReadFile(filepath.Join(h.state, "user"))
	if err != nil || !h.has("group") || strings.TrimSpace(string(group)) != "hookd" {
		log, _ := os.ReadFile(filepath.Join(h.state, "log"))
		h.t.Fatalf("after %s: hookd user %v (primary group %q), hookd group %v; want the user, in the hookd group\ncalls:\n%s",
			step, err == nil, strings.TrimSpace(string(group)), h.has("group"), log)
	}
}

// want checks hookd's state on the host after step.
func (h *debHost) want(step string, enabled, active, started bool) {
	h.t.Helper()
	if h.has("enabled") != enabled || h.has("active") != active || h.has("started") != started {
		log, _ := os.ReadFile(filepath.Join(h.state, "log"))
		h.t.Errorf("after %s: enabled %v, running %v, (re)started %v; want %v, %v, %v\ncalls:\n%s",
			step, h.has("enabled"), h.has("active"), h.has("started"), enabled, active, started, log)
	}
}

// TestDebianMaintainerScripts walks the package's life as dpkg drives
// it: install, upgrade (running, and stopped by the administrator),
// remove, install again over the removed package's configuration, purge.
// What an administrator sees is whether hookd is enabled and running.
func TestDebianMaintainerScripts(t *testing.T) {
	h := newDebHost(t)

	h.run("postinst", "configure", "")
	h.wantUser("install")
	h.want("install", true, true, true)

	h.run("prerm", "upgrade", "1.1.0")
	h.want("prerm of an upgrade", true, true, false)
	h.run("postinst", "configure", "1.0.0")
	h.want("upgrade", true, true, true)

	// An administrator's stop holds over an upgrade.
	os.Remove(filepath.Join(h.state, "active"))
	h.run("prerm", "upgrade", "1.2.0")
	h.run("postinst", "configure", "1.1.0")
	h.want("upgrade of a stopped hookd", true, false, false)
	os.WriteFile(filepath.Join(h.state, "active"), nil, 0o644) // started again by hand

	h.run("prerm", "remove")
	h.run("postrm", "remove")
	h.want("remove", false, false, false)
	if !h.has("user") {
		t.Error("remove deleted the hookd user, who owns the kept database")
	}

	// dpkg passes the removed package's version: its configuration
	// (conffiles) was kept.
	h.run("postinst", "configure", "1.2.0")
	h.want("install over a removed package", true, true, true)

	h.run("prerm", "remove")
	h.run("postrm", "remove")
	h.run("postrm", "purge")
	h.want("purge", false, false, false)
	// The database is kept, and with it its owner and group.
	h.wantUser("purge")

	// The administrator deletes the user, not its group (an account of
	// theirs is in it to read the database; a group made for that before
	// the first install is the same case): installing again gives the new
	// user that group, where useradd --user-group failed and left the
	// package unconfigured.
	os.Remove(filepath.Join(h.state, "user"))
	h.run("postinst", "configure", "")
	h.wantUser("install over a kept hookd group")
	h.want("install over a kept hookd group", true, true, true)
}

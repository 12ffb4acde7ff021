package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"
)

// releaseVersion is a tag such as v1.2.0 or 1.2.0-rc.1.
var releaseVersion = regexp.MustCompile(`^v?[0-9]+\.[0-9]+`)

// writeDeb writes a Debian package of the linux binary bin into r.out and
// returns its path. The unit, the env file and the maintainer scripts are
// the files in deploy/debian, as they are.
func (r *release) writeDeb(arch, bin string) (string, error) {
	dir := filepath.Join(r.root, "deploy", "debian")
	info := &nfpm.Info{
		Name:        "hookd",
		Arch:        arch,
		Platform:    "linux",
		Version:     r.version,
		Section:     "net",
		Priority:    "optional",
		Maintainer:  "hookd maintainers <hookd@users.noreply.github.com>",
		Description: "Qovery-compatible organization webhooks, self-hosted\nhookd stores webhooks, takes deployment events and delivers them, signed,\ndurably and with retries. SQLite by default; PostgreSQL for several nodes.",
		Homepage:    "https://github.com/hookd/hookd",
		MTime:       r.created,
		Overridables: nfpm.Overridables{
			Depends: []string{"passwd"}, // useradd, in postinst
			Contents: files.Contents{
				{Source: bin, Destination: "/usr/bin/hookd", FileInfo: &files.ContentFileInfo{Mode: 0o755}},
				{Source: filepath.Join(dir, "hookd.service"), Destination: "/usr/lib/systemd/system/hookd.service", FileInfo: &files.ContentFileInfo{Mode: 0o644}},
				// A conffile: upgrades keep the administrator's edits. Root
				// alone reads it (systemd does, as root): it may hold keys.
				{Source: filepath.Join(dir, "hookd.env"), Destination: "/etc/hookd/hookd.env", Type: files.TypeConfigNoReplace, FileInfo: &files.ContentFileInfo{Mode: 0o600}},
			},
			Scripts: nfpm.Scripts{
				PostInstall: filepath.Join(dir, "postinst"),
				PreRemove:   filepath.Join(dir, "prerm"),
				PostRemove:  filepath.Join(dir, "postrm"),
			},
		},
	}
	// dpkg wants versions to start with a digit; anything but a release
	// tag (a bare commit from git describe) becomes 0.0.0~git<commit>,
	// which sorts before any release.
	if !releaseVersion.MatchString(r.version) {
		info.Version, info.VersionSchema = "0.0.0~git"+strings.ReplaceAll(r.version, "-", "."), "none"
	}
	info = nfpm.WithDefaults(info)
	if err := nfpm.PrepareForPackager(info, "deb"); err != nil {
		return "", err
	}
	dst := filepath.Join(r.out, deb.Default.ConventionalFileName(info))
	f, err := os.Create(dst)
	if err != nil {
		return "", err
	}
	if err := deb.Default.Package(info, f); err != nil {
		f.Close()
		return "", err
	}
	return dst, f.Close()
}

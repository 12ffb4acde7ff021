package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

const (
	testVersion = "1.2.3"
	testCommit  = "0123456789abcdef0123456789abcdef01234567"
)

// TestRelease builds the linux/amd64 artifacts (the others differ only by
// GOOS/GOARCH) and checks each the way a user would meet it.
func TestRelease(t *testing.T) {
	out := t.TempDir()
	var log bytes.Buffer
	if err := run([]string{"-root", "../..", "-out", out, "-platforms", "linux/amd64", "-version", testVersion, "-commit", testCommit}, &log); err != nil {
		t.Fatalf("release: %v\n%s", err, log.String())
	}
	bin := filepath.Join(out, "hookd_1.2.3_linux_amd64")
	image := filepath.Join(out, "hookd_1.2.3_linux_amd64.image.tar")
	deb := filepath.Join(out, "hookd_1.2.3_amd64.deb")

	t.Run("binary", func(t *testing.T) {
		checkVersion(t, bin)
		// Static: no interpreter, so it runs on scratch and any distribution.
		if b, _ := exec.Command("file", bin).Output(); len(b) > 0 && !strings.Contains(string(b), "statically linked") {
			t.Errorf("the binary is not static: %s", b)
		}
		// Optimized with the profile of cmd/hookd (README, Build).
		info, err := buildinfo.ReadFile(bin)
		if err != nil {
			t.Fatal(err)
		}
		pgo := ""
		for _, s := range info.Settings {
			if s.Key == "-pgo" {
				pgo = s.Value
			}
		}
		if filepath.Base(pgo) != "default.pgo" {
			t.Errorf("the binary was built with -pgo=%q, want cmd/hookd/default.pgo", pgo)
		}
	})

	t.Run("checksums", func(t *testing.T) {
		sums, err := os.ReadFile(filepath.Join(out, "SHA256SUMS"))
		if err != nil {
			t.Fatal(err)
		}
		var listed []string
		for _, line := range strings.Split(strings.TrimSpace(string(sums)), "\n") {
			sum, file, _ := strings.Cut(line, "  ")
			data, err := os.ReadFile(filepath.Join(out, file))
			if err != nil {
				t.Fatal(err)
			}
			if h := sha256.Sum256(data); hex.EncodeToString(h[:]) != sum {
				t.Errorf("SHA256SUMS is wrong for %s", file)
			}
			listed = append(listed, file)
		}
		for _, f := range []string{bin, image, deb} {
			if !slices.Contains(listed, filepath.Base(f)) {
				t.Errorf("SHA256SUMS lacks %s: %q", filepath.Base(f), listed)
			}
		}
	})

	t.Run("reproducible", func(t *testing.T) {
		again := t.TempDir()
		if err := run([]string{"-root", "../..", "-out", again, "-platforms", "linux/amd64", "-version", testVersion, "-commit", testCommit}, io.Discard); err != nil {
			t.Fatal(err)
		}
		first, _ := os.ReadFile(filepath.Join(out, "SHA256SUMS"))
		second, _ := os.ReadFile(filepath.Join(again, "SHA256SUMS"))
		if !bytes.Equal(first, second) {
			t.Errorf("two builds of the same commit differ:\n%s\n%s", first, second)
		}
	})

	t.Run("image", func(t *testing.T) {
		tag, _ := name.NewTag("hookd:" + testVersion)
		img, err := tarball.ImageFromPath(image, &tag)
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		c := cf.Config
		if cf.OS != "linux" || cf.Architecture != "amd64" {
			t.Errorf("platform %s/%s", cf.OS, cf.Architecture)
		}
		if c.User != "65532:65532" {
			t.Errorf("user %q, want the non-root 65532:65532", c.User)
		}
		if !slices.Equal(c.Entrypoint, []string{"/usr/bin/hookd"}) || !slices.Equal(c.Cmd, []string{"serve"}) {
			t.Errorf("entrypoint %q cmd %q, want hookd serve", c.Entrypoint, c.Cmd)
		}
		if !slices.Contains(c.Env, "HOOKD_DATABASE_URL=sqlite:/data/hookd.db") {
			t.Errorf("env %q lacks the SQLite default in /data", c.Env)
		}
		if _, ok := c.Volumes["/data"]; !ok {
			t.Errorf("volumes %v lack /data", c.Volumes)
		}
		if c.Labels["org.opencontainers.image.version"] != testVersion || c.Labels["org.opencontainers.image.revision"] != testCommit {
			t.Errorf("labels %v", c.Labels)
		}

		files := map[string]*tar.Header{}
		rc := mutate.Extract(img)
		defer rc.Close()
		tr := tar.NewReader(rc)
		extracted := filepath.Join(t.TempDir(), "hookd")
		var passwd []byte
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			files[strings.TrimSuffix(h.Name, "/")] = h
			switch h.Name {
			case "usr/bin/hookd":
				data, _ := io.ReadAll(tr)
				if err := os.WriteFile(extracted, data, 0o755); err != nil {
					t.Fatal(err)
				}
			case "etc/passwd":
				passwd, _ = io.ReadAll(tr)
			}
		}
		checkVersion(t, extracted)
		if !bytes.Contains(passwd, []byte(":65532:65532:")) {
			t.Errorf("/etc/passwd has no entry for the image's user:\n%s", passwd)
		}
		if h := files["data"]; h == nil || h.Uid != 65532 || h.Typeflag != tar.TypeDir {
			t.Errorf("/data is not a directory of the image's user: %+v", h)
		}
		if h := files["etc/ssl/certs/ca-certificates.crt"]; h == nil || h.Size < 1000 {
			t.Errorf("no CA bundle: %+v", h)
		}
		if files["tmp"] == nil {
			t.Error("no /tmp")
		}
	})

	t.Run("Dockerfile", func(t *testing.T) {
		// The Dockerfile cannot be built here (no Docker engine); it must at
		// least promise the image this command builds.
		df, err := os.ReadFile("../../Dockerfile")
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{
			"USER 65532:65532",
			"ENV HOOKD_DATABASE_URL=sqlite:/data/hookd.db",
			"VOLUME /data",
			`ENTRYPOINT ["/usr/bin/hookd"]`,
			`CMD ["serve"]`,
			"CGO_ENABLED=0",
			"FROM scratch",
		} {
			if !bytes.Contains(df, []byte(want)) {
				t.Errorf("the Dockerfile lacks %q", want)
			}
		}
	})

	t.Run("deb", func(t *testing.T) {
		if _, err := exec.LookPath("dpkg-deb"); err != nil {
			t.Skip("dpkg-deb is not installed")
		}
		fields, err := exec.Command("dpkg-deb", "-f", deb, "Package", "Version", "Architecture", "Depends").Output()
		if err != nil {
			t.Fatal(err)
		}
		want := "Package: hookd\nVersion: 1.2.3\nArchitecture: amd64\nDepends: passwd\n"
		if string(fields) != want {
			t.Errorf("control fields:\n%s\nwant:\n%s", fields, want)
		}
		contents, err := exec.Command("dpkg-deb", "-c", deb).Output()
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{
			"-rwxr-xr-x root/root", "./usr/bin/hookd",
			"./usr/lib/systemd/system/hookd.service",
			"-rw------- root/root", "./etc/hookd/hookd.env",
		} {
			if !bytes.Contains(contents, []byte(want)) {
				t.Errorf("dpkg-deb -c lacks %q:\n%s", want, contents)
			}
		}
		conffiles, err := exec.Command("dpkg-deb", "-I", deb, "conffiles").Output()
		if err != nil || strings.TrimSpace(string(conffiles)) != "/etc/hookd/hookd.env" {
			t.Errorf("conffiles %q (%v), want the env file alone", conffiles, err)
		}
		postinst, err := exec.Command("dpkg-deb", "-I", deb, "postinst").Output()
		if err != nil || !bytes.Contains(postinst, []byte("useradd --system")) {
			t.Errorf("postinst does not create the user (%v):\n%s", err, postinst)
		}

		root := t.TempDir()
		if out, err := exec.Command("dpkg-deb", "-x", deb, root).CombinedOutput(); err != nil {
			t.Fatalf("dpkg-deb -x: %v\n%s", err, out)
		}
		checkVersion(t, filepath.Join(root, "usr/bin/hookd"))
		for _, script := range []string{"postinst", "prerm", "postrm"} {
			if out, err := exec.Command("sh", "-n", filepath.Join("../../deploy/debian", script)).CombinedOutput(); err != nil {
				t.Errorf("%s: %v\n%s", script, err, out)
			}
		}
		unit, err := os.ReadFile(filepath.Join(root, "usr/lib/systemd/system/hookd.service"))
		if err != nil {
			t.Fatal(err)
		}
		settings := unitSettings(unit)
		for k, v := range map[string]string{
			"User": "hookd", "StateDirectory": "hookd", "NoNewPrivileges": "yes", "ProtectSystem": "strict",
			"EnvironmentFile": "/etc/hookd/hookd.env", "ExecStart": "/usr/bin/hookd serve", "WantedBy": "multi-user.target",
		} {
			if !slices.Contains(settings[k], v) {
				t.Errorf("the unit's %s is %q, want %q", k, settings[k], v)
			}
		}
		t.Run("systemd-analyze verify", func(t *testing.T) {
			if _, err := exec.LookPath("systemd-analyze"); err != nil {
				t.Skip("systemd-analyze is not installed")
			}
			// verify checks that ExecStart exists: point it at the
			// extracted binary.
			u := filepath.Join(root, "hookd.service")
			os.WriteFile(u, bytes.ReplaceAll(unit, []byte("ExecStart=/usr/bin/hookd"), []byte("ExecStart="+filepath.Join(root, "usr/bin/hookd"))), 0o644)
			var stderr bytes.Buffer
			cmd := exec.Command("systemd-analyze", "verify", u)
			cmd.Stderr = &stderr
			if err := cmd.Run(); err != nil || stderr.Len() > 0 {
				t.Errorf("systemd-analyze verify: %v\n%s", err, stderr.String())
			}
			// systemd's own exposure score, 0 (locked down) to 10: 2 at most
			// ("OK"; the threshold counts tenths).
			if out, err := exec.Command("systemd-analyze", "security", "--offline=yes", "--threshold=20", u).CombinedOutput(); err != nil {
				t.Errorf("systemd-analyze security: %v\n%s", err, out)
			}
		})
	})
}

// checkVersion runs `hookd version` and checks what was stamped in.
func checkVersion(t *testing.T, bin string) {
	t.Helper()
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("%s version: %v\n%s", bin, err, out)
	}
	if want := "hookd 1.2.3 (commit " + testCommit; !strings.HasPrefix(string(out), want) {
		t.Errorf("hookd version printed %q, want %q…", out, want)
	}
}

// unitSettings reads a systemd unit's Key=value lines (all sections).
func unitSettings(unit []byte) map[string][]string {
	m := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(unit))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			m[k] = append(m[k], v)
		}
	}
	return m
}

func TestDebVersion(t *testing.T) {
	for v, want := range map[string]bool{"v1.2.0": true, "1.2.0-rc.1": true, "5a73e64": false, "5a73e64-dirty": false, "v0.1.0-3-gabcdef0": true} {
		if got := releaseVersion.MatchString(v); got != want {
			t.Errorf("%q is a release version: %v, want %v", v, got, want)
		}
	}
}

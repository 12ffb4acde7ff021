// Command release builds hookd's release artifacts into one folder: static
// binaries for linux and darwin on amd64 and arm64 with the version and
// commit stamped in, a container image and a Debian package for each
// linux architecture, and SHA256SUMS over all of them.
//
//	go run ./cmd/release                  # everything, into dist/
//	go run ./cmd/release -platforms linux/amd64 -version 1.2.0
//
// It needs Go and git, nothing else: no Docker engine (the image is
// assembled with go-containerregistry), no dpkg (the package is written
// with nfpm) and no network. It must never touch anything outside the
// output folder.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "release:", err)
		os.Exit(1)
	}
}

// release is what one run builds, and from what.
type release struct {
	root      string // the repository: go.mod, deploy/
	out       string
	version   string
	commit    string
	created   time.Time // the commit's time: the same sources give the same artifacts
	platforms []platform
}

type platform struct{ os, arch string }

func (p platform) String() string { return p.os + "/" + p.arch }

var allPlatforms = "linux/amd64,linux/arm64,darwin/amd64,darwin/arm64"

func run(args []string, log io.Writer) error {
	fs := flag.NewFlagSet("release", flag.ContinueOnError)
	fs.SetOutput(log)
	out := fs.String("out", "dist", "folder the artifacts are written to")
	root := fs.String("root", ".", "the hookd repository")
	version := fs.String("version", "", "version stamped in (default: git describe --tags --always --dirty)")
	commit := fs.String("commit", "", "commit stamped in (default: git rev-parse HEAD)")
	platforms := fs.String("platforms", allPlatforms, "comma-separated GOOS/GOARCH list; images and packages are made for the linux ones")
	if err := fs.Parse(args); err != nil {
		return err
	}
	r := &release{root: *root, out: *out, version: *version, commit: *commit}
	var err error
	if r.version == "" {
		if r.version, err = git(r.root, "describe", "--tags", "--always", "--dirty"); err != nil {
			return err
		}
	}
	if r.commit == "" {
		if r.commit, err = git(r.root, "rev-parse", "HEAD"); err != nil {
			return err
		}
	}
	r.created = time.Unix(0, 0).UTC()
	if ts, err := git(r.root, "log", "-1", "--format=%ct"); err == nil {
		if sec, err := strconv.ParseInt(ts, 10, 64); err == nil {
			r.created = time.Unix(sec, 0).UTC()
		}
	}
	for _, p := range strings.Split(*platforms, ",") {
		goos, goarch, ok := strings.Cut(strings.TrimSpace(p), "/")
		if !ok || !slices.Contains([]string{"linux", "darwin"}, goos) || !slices.Contains([]string{"amd64", "arm64"}, goarch) {
			return fmt.Errorf("-platforms: %q is not one of %s", p, allPlatforms)
		}
		r.platforms = append(r.platforms, platform{goos, goarch})
	}
	if err := os.MkdirAll(r.out, 0o755); err != nil {
		return err
	}
	var written []string
	for _, p := range r.platforms {
		bin := filepath.Join(r.out, fmt.Sprintf("hookd_%s_%s_%s", r.version, p.os, p.arch))
		fmt.Fprintf(log, "building %s\n", bin)
		if err := r.build(p, bin); err != nil {
			return err
		}
		written = append(written, bin)
		if p.os != "linux" {
			continue
		}
		image := filepath.Join(r.out, fmt.Sprintf("hookd_%s_linux_%s.image.tar", r.version, p.arch))
		fmt.Fprintf(log, "assembling %s\n", image)
		if err := r.writeImage(p.arch, bin, image); err != nil {
			return fmt.Errorf("image for %s: %w", p, err)
		}
		deb, err := r.writeDeb(p.arch, bin)
		if err != nil {
			return fmt.Errorf("package for %s: %w", p, err)
		}
		fmt.Fprintf(log, "packaged %s\n", deb)
		written = append(written, image, deb)
	}
	sums := filepath.Join(r.out, "SHA256SUMS")
	if err := writeChecksums(sums, written); err != nil {
		return err
	}
	fmt.Fprintf(log, "wrote %s\n", sums)
	return nil
}

// build compiles a static hookd (no cgo: SQLite is pure Go) for p.
func (r *release) build(p platform, dst string) error {
	abs, err := filepath.Abs(dst)
	if err != nil {
		return err
	}
	ldflags := fmt.Sprintf("-s -w -X main.version=%s -X main.commit=%s", r.version, r.commit)
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", ldflags, "-o", abs, "./cmd/hookd")
	cmd.Dir = r.root
	// CI's GOFLAGS=-race needs cgo; a release is never built with it.
	var goflags []string
	for _, f := range strings.Fields(os.Getenv("GOFLAGS")) {
		if f != "-race" {
			goflags = append(goflags, f)
		}
	}
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.os, "GOARCH="+p.arch, "GOFLAGS="+strings.Join(goflags, " "))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build for %s: %v\n%s", p, err, out)
	}
	return nil
}

// writeChecksums writes files' SHA-256 in sha256sum's format, so that
// `sha256sum -c SHA256SUMS` checks a download.
func writeChecksums(dst string, files []string) error {
	var b strings.Builder
	for _, f := range files {
		h := sha256.New()
		in, err := os.Open(f)
		if err != nil {
			return err
		}
		_, err = io.Copy(h, in)
		in.Close()
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s  %s\n", hex.EncodeToString(h.Sum(nil)), filepath.Base(f))
	}
	return os.WriteFile(dst, []byte(b.String()), 0o644)
}

func git(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %w (pass -version and -commit outside a git checkout)", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out)), nil
}

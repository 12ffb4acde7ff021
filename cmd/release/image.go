package main

import (
	"archive/tar"
	"bytes"
	"io"
	"os"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// The image's shape; the Dockerfile states the same (a test compares).
const (
	imageUID    = 65532 // "nonroot", as in distroless images
	imageBinary = "/usr/bin/hookd"
	caBundle    = "/etc/ssl/certs/ca-certificates.crt"
)

var (
	imageEnv        = []string{"HOOKD_DATABASE_URL=sqlite:/data/hookd.db", "SSL_CERT_FILE=" + caBundle}
	imageEntrypoint = []string{imageBinary}
	imageCmd        = []string{"serve"}
)

// hostCABundle is where the build machine's CA certificates are read
// from (Debian's ca-certificates).
var hostCABundle = caBundle

// writeImage writes a `docker load`-able image of the linux binary bin:
// one layer on nothing (no base image is pulled), holding the binary, the
// build machine's CA bundle, a passwd entry for the non-root user it runs
// as, and /data, the SQLite volume.
func (r *release) writeImage(arch, bin, dst string) error {
	layer, err := r.imageLayer(bin)
	if err != nil {
		return err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	cf.Created = v1.Time{Time: r.created}
	cf.Config.User = "65532:65532"
	cf.Config.Entrypoint = imageEntrypoint
	cf.Config.Cmd = imageCmd
	cf.Config.Env = imageEnv
	cf.Config.WorkingDir = "/data"
	cf.Config.Volumes = map[string]struct{}{"/data": {}}
	cf.Config.ExposedPorts = map[string]struct{}{"8080/tcp": {}}
	cf.Config.Labels = map[string]string{
		"org.opencontainers.image.title":    "hookd",
		"org.opencontainers.image.version":  r.version,
		"org.opencontainers.image.revision": r.commit,
		"org.opencontainers.image.source":   "https://github.com/hookd/hookd",
	}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return err
	}
	tag, err := name.NewTag("hookd:" + r.version)
	if err != nil {
		return err
	}
	return tarball.WriteToFile(dst, tag, img)
}

// imageLayer is the image's only layer, with fixed times and owners so
// that the same binary always gives the same digest.
func (r *release) imageLayer(bin string) (v1.Layer, error) {
	binary, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	certs, err := os.ReadFile(hostCABundle)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	entries := []struct {
		name     string
		mode     int64
		uid      int
		contents []byte // nil for a directory
	}{
		{"etc/", 0o755, 0, nil},
		{"etc/passwd", 0o644, 0, []byte("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:hookd:/data:/sbin/nologin\n")},
		{"etc/group", 0o644, 0, []byte("root:x:0:\nnonroot:x:65532:\n")},
		{"etc/ssl/", 0o755, 0, nil},
		{"etc/ssl/certs/", 0o755, 0, nil},
		{caBundle[1:], 0o644, 0, certs},
		{"usr/", 0o755, 0, nil},
		{"usr/bin/", 0o755, 0, nil},
		{imageBinary[1:], 0o755, 0, binary},
		{"data/", 0o700, imageUID, nil},
		{"tmp/", 0o1777, 0, nil},
	}
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, Uid: e.uid, Gid: e.uid, ModTime: r.created, Format: tar.FormatPAX}
		if e.contents == nil {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.contents))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.contents); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	})
}

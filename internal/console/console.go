// Package console is hookd's web console: a single page, embedded in the
// binary, that manages an organization's webhooks and reads their delivery
// log through hookd's own JSON API, exactly as any other client does.
//
// It has no server-side state and no back door: the browser keeps the API
// token (or JWT) and the organization id in sessionStorage only, sends them
// with each API request, and forgets them on sign-out or when the tab
// closes. The console never stores, logs or receives a token itself.
package console

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"html/template"
	"io/fs"
	"mime"
	"net/http"
	"path"
)

//go:embed static
var static embed.FS

// securityHeaders keep the page from running anything it did not ship
// (everything is same-origin, so no CDN and no inline script is needed).
var securityHeaders = map[string]string{
	"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
	"X-Content-Type-Options": "nosniff",
	"Referrer-Policy":        "no-referrer",
	"X-Frame-Options":        "DENY",
}

// Routes returns the console's routes by http.ServeMux pattern, to be
// served beside the API: the page at exactly "/" and each asset at its own
// path under /console/, so that any other path still gets the API's 404.
// version is shown as the User-Agent hookd sends ("hookd/<version>").
func Routes(version string) map[string]http.Handler {
	assets, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // unreachable: the directory is embedded
	}
	routes := map[string]http.Handler{}
	// Assets are named by content hash in the page, so they can be cached
	// for good; the page itself is revalidated every time.
	hashes := map[string]string{}
	entries, err := fs.ReadDir(assets, ".")
	if err != nil {
		panic(err)
	}
	for _, e := range entries {
		if e.IsDir() || e.Name() == "index.html" {
			continue
		}
		body, err := fs.ReadFile(assets, e.Name())
		if err != nil {
			panic(err)
		}
		sum := sha256.Sum256(body)
		hashes[e.Name()] = hex.EncodeToString(sum[:6])
		routes["GET /console/"+e.Name()] = asset(e.Name(), body)
	}
	page := template.Must(template.ParseFS(assets, "index.html"))
	var buf bytes.Buffer
	err = page.Execute(&buf, struct {
		Version string
		Asset   func(name string) string
	}{version, func(name string) string { return "/console/" + name + "?v=" + hashes[name] }})
	if err != nil {
		panic(err)
	}
	index := buf.Bytes()
	routes["GET /{$}"] = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setHeaders(w, "text/html; charset=utf-8", "no-cache")
		w.Write(index)
	})
	return routes
}

func asset(name string, body []byte) http.Handler {
	ctype := mime.TypeByExtension(path.Ext(name))
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setHeaders(w, ctype, "public, max-age=31536000, immutable")
		w.Write(body)
	})
}

func setHeaders(w http.ResponseWriter, ctype, cache string) {
	h := w.Header()
	for k, v := range securityHeaders {
		h.Set(k, v)
	}
	h.Set("Content-Type", ctype)
	h.Set("Cache-Control", cache)
}

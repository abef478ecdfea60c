package server

import (
	"embed"
	"io/fs"
	"net/http"
)

// The dashboard is a single page and its script and style sheet, embedded
// in the binary: no CDN, nothing fetched at run time. It polls
// /api/v1/status, /api/v1/upstreams and /api/v1/stats once a second.
//
//go:embed dashboard
var dashboardFiles embed.FS

func dashboardHandler() http.Handler {
	sub, _ := fs.Sub(dashboardFiles, "dashboard") // the directory is embedded: no error
	files := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		// Everything the page loads is its own: no inline script, no other origin.
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		if r.URL.Path == "/" {
			http.ServeFileFS(w, r, sub, "index.html")
			return
		}
		http.StripPrefix("/dashboard", files).ServeHTTP(w, r)
	})
}

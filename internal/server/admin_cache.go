package server

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/gatehouse-proxy/gatehouse/internal/cache"
)

// purgeRequest is the body of POST /api/v1/cache/purge: exactly one of
// url, prefix or tags; cache limits it to one named store.
type purgeRequest struct {
	URL    string   `json:"url"`
	Prefix string   `json:"prefix"`
	Tags   []string `json:"tags"`
	Cache  string   `json:"cache"`
}

// addCacheAdmin registers the cache purge endpoints on the admin mux.
func (s *Server) addCacheAdmin(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/v1/cache/purge", func(w http.ResponseWriter, r *http.Request) {
		var req purgeRequest
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": "body must be JSON: {\"url\"|\"prefix\"|\"tags\": ..., \"cache\": NAME}"})
			return
		}
		given := 0
		for _, set := range []bool{req.URL != "", req.Prefix != "", len(req.Tags) > 0} {
			if set {
				given++
			}
		}
		if given != 1 {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": "give exactly one of url, prefix, tags"})
			return
		}
		stores := s.cacheStores(req.Cache)
		if req.Cache != "" && len(stores) == 0 {
			writeJSON(w, http.StatusNotFound, map[string]any{"error": "no cache named " + req.Cache})
			return
		}
		n := 0
		for _, st := range stores {
			switch {
			case req.URL != "":
				n += st.PurgeURL(req.URL)
			case req.Prefix != "":
				n += st.PurgePrefix(req.Prefix)
			default:
				for _, t := range req.Tags {
					n += st.PurgeTag(t)
				}
			}
		}
		writeJSON(w, http.StatusOK, map[string]any{"purged": n})
	})
	// PURGE /path with the site's Host: that URL (http and https); a path
	// ending in * purges the prefix; a Surrogate-Key (or Cache-Tag) field
	// purges by those keys instead — as Varnish and Fastly are used.
	mux.HandleFunc("PURGE /", func(w http.ResponseWriter, r *http.Request) {
		n := 0
		keys := strings.Fields(r.Header.Get("Surrogate-Key"))
		for _, v := range r.Header.Values("Cache-Tag") {
			for _, t := range strings.Split(v, ",") {
				if t = strings.TrimSpace(t); t != "" {
					keys = append(keys, t)
				}
			}
		}
		host := strings.ToLower(r.Host)
		target := r.URL.RequestURI()
		for _, st := range s.cacheStores(r.Header.Get("X-Cache-Name")) {
			switch {
			case len(keys) > 0:
				for _, k := range keys {
					n += st.PurgeTag(k)
				}
			case strings.HasSuffix(target, "*"):
				p := strings.TrimSuffix(target, "*")
				n += st.PurgePrefix("http://"+host+p) + st.PurgePrefix("https://"+host+p)
			default:
				n += st.PurgeURL("http://"+host+target) + st.PurgeURL("https://"+host+target)
			}
		}
		writeJSON(w, http.StatusOK, map[string]any{"purged": n})
	})
}

// cacheStores are the cache stores of the running configuration (name ""
// for all of them).
func (s *Server) cacheStores(name string) []*cache.Store {
	var out []*cache.Store
	s.snap.Load().Filters.Each(func(_ string, v any) {
		if st, ok := v.(*cache.Store); ok && (name == "" || st.Name == name) && !slices.Contains(out, st) {
			out = append(out, st)
		}
	})
	return out
}

package server

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/cache"
	cachefilter "github.com/gatehouse-proxy/gatehouse/internal/filter/cache"
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
		p := cache.Purge{Cache: req.Cache, Tags: req.Tags}
		if req.URL != "" {
			p.URLs = []string{req.URL}
		}
		if req.Prefix != "" {
			p.Prefixes = []string{req.Prefix}
		}
		given := 0
		for _, set := range []bool{len(p.URLs) > 0, len(p.Prefixes) > 0, len(p.Tags) > 0} {
			if set {
				given++
			}
		}
		if given != 1 || slices.Contains(p.Tags, "") {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": "give exactly one of url, prefix, tags (non-empty)"})
			return
		}
		if req.Cache != "" && len(s.cacheStores(req.Cache)) == 0 {
			writeJSON(w, http.StatusNotFound, map[string]any{"error": "no cache named " + req.Cache})
			return
		}
		s.purge(w, r.Context(), &p)
	})
	// PURGE /path with the site in X-Purge-Host (Host must name the admin
	// listener): that URL (http and https); a path ending in * purges the
	// prefix; a Surrogate-Key (or Cache-Tag) field purges by those keys
	// instead — as Varnish and Fastly are used.
	mux.HandleFunc("PURGE /", func(w http.ResponseWriter, r *http.Request) {
		p := cache.Purge{Cache: r.Header.Get("X-Cache-Name"), Tags: strings.Fields(r.Header.Get("Surrogate-Key"))}
		for _, v := range r.Header.Values("Cache-Tag") {
			for _, t := range strings.Split(v, ",") {
				if t = strings.TrimSpace(t); t != "" {
					p.Tags = append(p.Tags, t)
				}
			}
		}
		host := strings.ToLower(r.Header.Get("X-Purge-Host"))
		target := r.URL.RequestURI()
		switch {
		case len(p.Tags) > 0:
		case host == "":
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": "PURGE needs X-Purge-Host: the site's host (or Surrogate-Key)"})
			return
		case strings.HasSuffix(target, "*"):
			pre := strings.TrimSuffix(target, "*")
			p.Prefixes = []string{"http://" + host + pre, "https://" + host + pre}
		default:
			p.URLs = []string{"http://" + host + target, "https://" + host + target}
		}
		s.purge(w, r.Context(), &p)
	})
}

// purge applies p here and, with cluster.redis, sends it to the fleet.
func (s *Server) purge(w http.ResponseWriter, ctx context.Context, p *cache.Purge) {
	out := map[string]any{"purged": p.Apply(s.cacheStores(""))}
	if fan := s.cacheFanout(); fan != nil {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if err := fan.Publish(ctx, p); err != nil {
			s.log.Warn("cache purge not sent to the fleet", "err", err)
			out["fleet"] = "not sent: Redis did not take it"
		} else {
			out["fleet"] = "sent"
		}
	}
	writeJSON(w, http.StatusOK, out)
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

// cacheFanout is the running configuration's purge fan-out, if any.
func (s *Server) cacheFanout() *cachefilter.Fanout {
	var fan *cachefilter.Fanout
	s.snap.Load().Filters.Each(func(_ string, v any) {
		if f, ok := v.(*cachefilter.Fanout); ok {
			fan = f
		}
	})
	return fan
}

package route

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/gatehouse-proxy/gatehouse/internal/config"
	"github.com/gatehouse-proxy/gatehouse/internal/upstream"
)

// Compile builds the router of a validated configuration. pools holds the
// upstream pools by name; validation has already checked every reference.
func Compile(cfg *config.Config, pools map[string]*upstream.Pool) (*Router, error) {
	rt := &Router{exact: map[string]*Site{}}
	for si, sc := range cfg.Sites {
		site := &Site{Name: fmt.Sprintf("sites[%d]", si)}
		for ri := range sc.Routes {
			r, err := compileRoute(&sc.Routes[ri], pools)
			if err != nil {
				return nil, err
			}
			r.Name = fmt.Sprintf("sites[%d].routes[%d]", si, ri)
			r.Site, r.Index = si, ri
			site.Routes = append(site.Routes, r)
			rt.all = append(rt.all, r)
		}
		hosts := sc.Hosts
		if len(hosts) == 0 {
			hosts = []string{"*"}
		}
		for _, h := range hosts {
			h = strings.ToLower(strings.TrimSuffix(h, "."))
			if strings.Contains(h, ":") && !strings.HasPrefix(h, "[") {
				// An IPv6 literal: requests carry it bracketed in Host.
				h = "[" + h + "]"
			}
			switch {
			case h == "*":
				if rt.fallback == nil {
					rt.fallback = site
				}
			case strings.HasPrefix(h, "*."):
				rt.wildcards = append(rt.wildcards, wildcard{suffix: []byte(h[1:]), site: site})
			default:
				if _, dup := rt.exact[h]; !dup {
					rt.exact[h] = site
				}
			}
		}
	}
	rt.sortWildcards()
	return rt, nil
}

func compileRoute(rc *config.Route, pools map[string]*upstream.Pool) (*Route, error) {
	m := &rc.Match
	r := &Route{
		pathRegex:       m.PathRegex,
		clientIP:        m.ClientIP,
		RequestHeaders:  compileHeaderOps(rc.RequestHeaders.Set, rc.RequestHeaders.Add, rc.RequestHeaders.Remove),
		ResponseHeaders: compileHeaderOps(rc.ResponseHeaders.Set, rc.ResponseHeaders.Add, rc.ResponseHeaders.Remove),
	}
	if m.Path != "" {
		r.path = []byte(m.Path)
	}
	if m.PathPrefix != "" {
		r.pathPrefix = []byte(m.PathPrefix)
	}
	if rc.StripPrefix != "" {
		r.StripPrefix = []byte(strings.TrimSuffix(rc.StripPrefix, "/"))
	}
	for _, meth := range m.Methods {
		r.methods = append(r.methods, []byte(meth))
	}
	var err error
	if r.headers, err = compileValueMatches(m.Headers, true); err != nil {
		return nil, err
	}
	if r.query, err = compileValueMatches(m.Query, false); err != nil {
		return nil, err
	}
	switch {
	case rc.Upstream != "":
		r.Upstream = pools[rc.Upstream]
		if r.Upstream == nil {
			return nil, fmt.Errorf("undefined upstream %q", rc.Upstream)
		}
	case len(rc.Split) > 0:
		var total uint64
		for _, s := range rc.Split {
			if s.Weight <= 0 {
				continue
			}
			p := pools[s.Upstream]
			if p == nil {
				return nil, fmt.Errorf("undefined upstream %q", s.Upstream)
			}
			total += uint64(s.Weight)
			r.Split = append(r.Split, SplitEntry{Pool: p, cumulative: total})
		}
		if total == 0 {
			return nil, fmt.Errorf("split with no weight")
		}
	case rc.Respond != nil:
		r.Respond = &Respond{
			Status:  rc.Respond.Status,
			Body:    []byte(rc.Respond.Body),
			Headers: respondHeaders(rc.Respond.Headers, rc.Respond.Body),
		}
	case rc.Redirect != nil:
		r.Redirect = compileRedirect(rc.Redirect.To, rc.Redirect.Status)
	}
	return r, nil
}

func compileValueMatches(m map[string]string, canonical bool) ([]valueMatch, error) {
	var out []valueMatch
	for _, k := range sortedKeys(m) {
		v := m[k]
		vm := valueMatch{name: []byte(k)}
		switch {
		case v == "*":
			vm.present = true
		case strings.HasPrefix(v, "~"):
			re, err := regexp.Compile(v[1:])
			if err != nil {
				return nil, fmt.Errorf("%s: %v", k, err)
			}
			vm.re = re
		default:
			vm.exact = []byte(v)
		}
		out = append(out, vm)
	}
	return out, nil
}

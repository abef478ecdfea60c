package server

import (
	"net"
	"strconv"

	"github.com/gatehouse-proxy/gatehouse/internal/config"
	"github.com/gatehouse-proxy/gatehouse/internal/filter"
	"github.com/gatehouse-proxy/gatehouse/internal/filter/https"
)

// siteTLSFilters are the filters a site's https_redirect and hsts settings
// put in front of its middleware.
func siteTLSFilters(cfg *config.Config, site *config.Site) []filter.Filter {
	var out []filter.Filter
	if site.HTTPSRedirect {
		out = append(out, &https.Redirect{Port: httpsPort(cfg)})
	}
	if h := site.HSTS; h != nil {
		out = append(out, https.NewHSTS(h.MaxAge, h.IncludeSubdomains, h.Preload))
	}
	return out
}

// httpsPort is the port of the first TLS listener (443 when there is none
// in this configuration: HTTPS is then served by something in front).
func httpsPort(cfg *config.Config) int {
	for _, l := range cfg.Listeners {
		if l.TLS != nil {
			_, p, _ := net.SplitHostPort(l.Addr)
			if n, err := strconv.Atoi(p); err == nil && n != 0 {
				return n
			}
		}
	}
	return 443
}

package cache

// Purge says what to remove: URLs (with their variants), URL prefixes and
// surrogate keys, from the store named Cache or from every store. It is
// also the message purges are fanned out to a fleet with.
type Purge struct {
	Cache    string   `json:"cache,omitempty"`
	URLs     []string `json:"urls,omitempty"`
	Prefixes []string `json:"prefixes,omitempty"`
	Tags     []string `json:"tags,omitempty"`
}

// Apply purges the stores it concerns and returns how many responses went.
func (p *Purge) Apply(stores []*Store) int {
	n := 0
	for _, s := range stores {
		if p.Cache != "" && s.Name != p.Cache {
			continue
		}
		for _, u := range p.URLs {
			n += s.PurgeURL(u)
		}
		for _, pre := range p.Prefixes {
			n += s.PurgePrefix(pre)
		}
		for _, t := range p.Tags {
			n += s.PurgeTag(t)
		}
	}
	return n
}

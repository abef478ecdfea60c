package cache

import "testing"

// RFC 9111 §4.4 with §4.1: invalidating a URL makes every stored variant
// unreachable, also once a new variant of the URL is stored.
func TestRFC9111_4_4_InvalidatedVariantsStayGone(t *testing.T) {
	s, err := NewMemory("m", 1<<20, 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var buf []byte
	en, fr := hdr("Accept-Language", "en"), hdr("Accept-Language", "fr")
	put(t, s, "http://a/v", "english", en, "Cache-Control", "max-age=600", "Vary", "Accept-Language")
	s.Invalidate("http://a/v")
	put(t, s, "http://a/v", "french", fr, "Cache-Control", "max-age=600", "Vary", "Accept-Language")
	if e, marker := s.Lookup([]byte("http://a/v"), en, &buf); e != nil || marker == nil {
		t.Fatalf("old variant after invalidation: %+v (marker %v)", e, marker != nil)
	}
	if e, _ := s.Lookup([]byte("http://a/v"), fr, &buf); e == nil || string(e.Body) != "french" {
		t.Fatalf("new variant: %+v", e)
	}
}

func TestPurgeByURLPrefixAndTag(t *testing.T) {
	s, err := NewMemory("m", 1<<20, 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	put(t, s, "http://a/static/1", "1", nil, "Cache-Control", "max-age=600", "Cache-Tag", "img, static")
	put(t, s, "http://a/static/2", "2", nil, "Cache-Control", "max-age=600", "Surrogate-Key", "static  css")
	put(t, s, "http://a/page", "p", hdr("Accept", "x"), "Cache-Control", "max-age=600", "Vary", "Accept", "Surrogate-Key", "page")
	if n := (&Purge{Tags: []string{"css"}}).Apply([]*Store{s}); n != 1 {
		t.Fatalf("tag css: %d", n)
	}
	if n := (&Purge{Prefixes: []string{"http://a/static/"}}).Apply([]*Store{s}); n != 1 {
		t.Fatalf("prefix: %d", n)
	}
	if n := (&Purge{URLs: []string{"http://a/page"}, Cache: "other"}).Apply([]*Store{s}); n != 0 {
		t.Fatalf("another store's purge: %d", n)
	}
	if n := s.PurgeURL("http://a/page"); n != 1 {
		t.Fatalf("URL with a variant: %d", n)
	}
	if s.Len() != 0 {
		t.Fatalf("%d entries left", s.Len())
	}
}

package cache

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
)

func hdr(pairs ...string) exchange.Headers {
	var h exchange.Headers
	for i := 0; i+1 < len(pairs); i += 2 {
		h.Add([]byte(pairs[i]), []byte(pairs[i+1]))
	}
	return h
}

func put(t *testing.T, s *Store, url, body string, req exchange.Headers, resp ...string) {
	t.Helper()
	now := time.Now()
	h := hdr(resp...)
	d := Decide(&Request{Control: ParseControl(nil)}, 200, h, Params{}, now)
	if !d.Store {
		t.Fatalf("%s: not storable", url)
	}
	if !s.Put(NewEntry("", url, 200, h, []byte(body), &d, now, now), d.Vary, req) {
		t.Fatalf("%s: not stored", url)
	}
}

// A disk store starts again with what it held, variants included, and
// drops what its memory bound evicted.
func TestDiskStoreSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	s, err := NewDisk("d", dir, 1<<20, 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	put(t, s, "http://a/x", "xbody", nil, "Cache-Control", "max-age=600", "ETag", `"e1"`, "Surrogate-Key", "k1")
	put(t, s, "http://a/v", "english", hdr("Accept-Language", "en"), "Cache-Control", "max-age=600", "Vary", "Accept-Language")
	put(t, s, "http://a/v", "french", hdr("Accept-Language", "fr"), "Cache-Control", "max-age=600", "Vary", "Accept-Language")
	put(t, s, "http://a/gone", "g", nil, "Cache-Control", "max-age=600")
	s.Invalidate("http://a/gone")
	s.Close()

	s2, err := NewDisk("d", dir, 1<<20, 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	var buf []byte
	e, _ := s2.Lookup([]byte("http://a/x"), nil, &buf)
	if e == nil || string(e.Body) != "xbody" || string(e.ETag) != `"e1"` || len(e.Tags) != 1 || e.TTL(time.Now()) < 590*time.Second {
		t.Fatalf("after restart: %+v", e)
	}
	for lang, want := range map[string]string{"en": "english", "fr": "french"} {
		if e, _ := s2.Lookup([]byte("http://a/v"), hdr("Accept-Language", lang), &buf); e == nil || string(e.Body) != want {
			t.Fatalf("variant %s after restart: %+v", lang, e)
		}
	}
	if e, _ := s2.Lookup([]byte("http://a/gone"), nil, &buf); e != nil {
		t.Fatalf("an invalidated entry came back after restart")
	}
	// A new variant gets an id no old variant has.
	put(t, s2, "http://a/w", "w", hdr("Accept", "x"), "Cache-Control", "max-age=600", "Vary", "Accept")
	if n := s2.PurgeTag("k1"); n != 1 {
		t.Fatalf("purge by tag after restart: %d", n)
	}
}

// Files of a disk store follow the memory bound; foreign and broken
// files are cleared at start.
func TestDiskStoreBoundedAndTolerant(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(dir+"/"+strings.Repeat("a", 64), []byte("garbage"), 0o600)
	os.WriteFile(dir+"/.tmp-123", []byte("partial"), 0o600)
	old := time.Now().Add(-time.Hour)
	os.Chtimes(dir+"/.tmp-123", old, old)
	s, err := NewDisk("d", dir, 64<<10, 8<<10)
	if err != nil {
		t.Fatal(err)
	}
	body := strings.Repeat("z", 4<<10)
	for i := 0; i < 100; i++ {
		put(t, s, "http://a/"+strings.Repeat("p", i%7)+string(rune('a'+i%26))+string(rune('a'+i/26)), body, nil, "Cache-Control", "max-age=600")
	}
	s.Close()
	des, _ := os.ReadDir(dir)
	var total int64
	for _, de := range des {
		fi, _ := de.Info()
		total += fi.Size()
		if strings.HasPrefix(de.Name(), ".tmp") || de.Name() == strings.Repeat("a", 64) {
			t.Errorf("%s left in the directory", de.Name())
		}
	}
	if total > 64<<10 {
		t.Fatalf("%d bytes of files for max_bytes 64KiB (%d files)", total, len(des))
	}
}

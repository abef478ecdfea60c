package botfilter

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
)

// A challenge token is "1.EXPIRY.MAC": EXPIRY in Unix seconds, MAC the first
// 16 bytes of HMAC-SHA256(secret, "1|EXPIRY|NETWORK|USER-AGENT") in
// unpadded base64url, NETWORK being the client's /24 (IPv4) or /64 (IPv6).
// It proves that a client that ran the page's script came from that network
// with that user agent before EXPIRY; nothing is stored on the server.
const (
	tokenVersion = "1."
	macLen       = 16
	macB64Len    = 22 // base64.RawURLEncoding.EncodedLen(macLen)
)

// signer makes and checks tokens with one secret.
type signer struct {
	pool sync.Pool // of hash.Hash (HMAC-SHA256 keyed with the secret)
}

func newSigner(secret []byte) *signer {
	key := append([]byte(nil), secret...)
	return &signer{pool: sync.Pool{New: func() any { return hmac.New(sha256.New, key) }}}
}

// network is the part of the client's address the token is bound to, so
// that a token works across a client's changing addresses in one network
// but not from elsewhere.
func network(ip netip.Addr) netip.Prefix {
	ip = ip.Unmap()
	bits := 64
	if ip.Is4() {
		bits = 24
	}
	p, _ := ip.Prefix(bits)
	return p
}

func (s *signer) mac(dst []byte, exp int64, ip netip.Addr, ua []byte) []byte {
	h := s.pool.Get().(hash.Hash)
	h.Reset()
	var buf [96]byte
	b := append(buf[:0], tokenVersion[:1]...)
	b = append(b, '|')
	b = strconv.AppendInt(b, exp, 10)
	b = append(b, '|')
	b = network(ip).AppendTo(b)
	b = append(b, '|')
	h.Write(b)
	h.Write(ua)
	dst = h.Sum(dst)
	s.pool.Put(h)
	return dst
}

// token returns a new token for the client, valid until exp.
func (s *signer) token(exp time.Time, ip netip.Addr, ua []byte) string {
	var m [sha256.Size]byte
	sum := s.mac(m[:0], exp.Unix(), ip, ua)
	return tokenVersion + strconv.FormatInt(exp.Unix(), 10) + "." + base64.RawURLEncoding.EncodeToString(sum[:macLen])
}

// valid reports whether tok is a token of ours, unexpired at now, for this
// client's network and user agent.
func (s *signer) valid(tok []byte, now time.Time, ip netip.Addr, ua []byte) bool {
	exp, mac, ok := parseToken(tok)
	if !ok || now.Unix() >= exp {
		return false
	}
	var m [sha256.Size]byte
	want := s.mac(m[:0], exp, ip, ua)
	return hmac.Equal(mac[:], want[:macLen])
}

// parseToken splits a token into its expiry and MAC; anything else than
// the exact shape is refused.
func parseToken(tok []byte) (exp int64, mac [macLen]byte, ok bool) {
	if len(tok) < len(tokenVersion)+1+1+macB64Len || string(tok[:len(tokenVersion)]) != tokenVersion {
		return 0, mac, false
	}
	rest := tok[len(tokenVersion):]
	dot := len(rest) - macB64Len - 1
	if dot < 1 || dot > 19 || rest[dot] != '.' {
		return 0, mac, false
	}
	for _, c := range rest[:dot] {
		if c < '0' || c > '9' {
			return 0, mac, false
		}
		exp = exp*10 + int64(c-'0')
		if exp > 1<<40 { // far beyond any real expiry; also stops overflow
			return 0, mac, false
		}
	}
	if rest[0] == '0' {
		return 0, mac, false
	}
	n, err := base64.RawURLEncoding.Decode(mac[:], rest[dot+1:])
	if err != nil || n != macLen {
		return 0, mac, false
	}
	return exp, mac, true
}

// page is the challenge: a small page whose script stores the token in a
// cookie and reloads. The token is written in two reversed halves so that
// it does not appear verbatim in the page: a client must run the script
// (or be written for this page) to get in. Two tries within ten seconds at
// most, so that a browser refusing cookies sees an explanation instead of
// reloading forever. cookie is a token (checked at configuration time), the
// token only digits, dots and base64url: nothing needs escaping.
func page(cookie, tok string, ttl time.Duration, secure bool) []byte {
	half := len(tok) / 2
	attrs := "; Max-Age=" + strconv.Itoa(int(ttl/time.Second)) + "; Path=/; SameSite=Lax"
	if secure {
		attrs += "; Secure"
	}
	var b strings.Builder
	b.WriteString(`<!doctype html><html><head><meta charset="utf-8"><meta name="robots" content="noindex">` +
		`<meta name="viewport" content="width=device-width"><title>One moment…</title></head><body>` +
		`<p id="m">Checking your browser…</p><noscript><p>This site needs JavaScript to let you in.</p></noscript><script>` +
		`(function(){var a="` + reverse(tok[half:]) + `",b="` + reverse(tok[:half]) + `";` +
		`function r(s){return s.split("").reverse().join("")}` +
		`var k="gh_tries",t=(sessionStorage.getItem(k)||"0,0").split(","),n=+t[0],now=Date.now();` +
		`if(now-t[1]>10000)n=0;` +
		`if(n>=2){sessionStorage.removeItem(k);document.getElementById("m").textContent="Please enable cookies for this site, then reload.";return}` +
		`sessionStorage.setItem(k,(n+1)+","+now);` +
		`document.cookie="` + cookie + `="+r(b)+r(a)+"` + attrs + `";` +
		`location.reload()})()</script></body></html>`)
	return []byte(b.String())
}

func reverse(s string) string {
	b := []byte(s)
	for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
	return string(b)
}

package h1

import (
	"bufio"
	"bytes"
	"errors"

	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
)

// Error is a message the engine refuses. Status is what the client is told;
// the connection is always closed after it, since framing can no longer be trusted.
type Error struct {
	Status int
	Reason string
}

func (e *Error) Error() string { return e.Reason }

var (
	errBadRequest       = &Error{400, "malformed request"}
	errBareLF           = &Error{400, "line not ended by CRLF"}
	errBadRequestLine   = &Error{400, "malformed request line"}
	errBadMethod        = &Error{400, "invalid method"}
	errBadTarget        = &Error{400, "invalid request target"}
	errBadVersion       = &Error{400, "malformed HTTP version"}
	errVersion          = &Error{505, "HTTP version not supported"}
	errBadHeader        = &Error{400, "malformed header field"}
	errObsFold          = &Error{400, "obsolete line folding"}
	errNoHost           = &Error{400, "missing Host header"}
	errManyHosts        = &Error{400, "more than one Host header"}
	errBadHost          = &Error{400, "invalid Host header"}
	errHostMismatch     = &Error{400, "request target authority differs from Host"}
	errBadCL            = &Error{400, "invalid Content-Length"}
	errCLMismatch       = &Error{400, "conflicting Content-Length headers"}
	errBadTE            = &Error{400, "unsupported Transfer-Encoding"}
	errCLAndTE          = &Error{400, "both Content-Length and Transfer-Encoding"}
	errTEInHTTP10       = &Error{400, "Transfer-Encoding in an HTTP/1.0 message"}
	errHeadTooLarge     = &Error{431, "request header fields too large"}
	errURITooLong       = &Error{414, "request target too long"}
	errBadStatus        = &Error{502, "malformed status line"}
	errRespHeadTooLarge = &Error{502, "response head too large"}
	errBadRespHead      = &Error{502, "malformed response head"}
)

// ReadHead reads one message head (start line and fields, up to and including
// the empty line) into buf, which it reuses. Leading empty lines are skipped
// (RFC 9112 §2.2). A head longer than max gives errHeadTooLarge, or
// errURITooLong while still in the start line.
func ReadHead(br *bufio.Reader, buf []byte, max int) ([]byte, error) {
	return readLines(br, buf, max, true)
}

// readLines reads CRLF lines up to an empty one. With startLine, the first
// line is a start line, before which empty lines are skipped.
func readLines(br *bufio.Reader, buf []byte, max int, startLine bool) ([]byte, error) {
	buf = buf[:0]
	inStartLine := startLine
	lineStart := 0
	skipped := 0
	for {
		frag, err := br.ReadSlice('\n')
		if len(buf)+len(frag) > max {
			if inStartLine {
				return buf, errURITooLong
			}
			return buf, errHeadTooLarge
		}
		buf = append(buf, frag...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return buf, err
		}
		line := buf[lineStart:]
		if len(line) < 2 || line[len(line)-2] != '\r' {
			return buf, errBareLF
		}
		if len(line) == 2 {
			if inStartLine {
				// Empty line before the start line: ignore it, a few times.
				if skipped++; skipped > 4 {
					return buf, errBadRequest
				}
				buf = buf[:0]
				lineStart = 0
				continue
			}
			return buf, nil
		}
		inStartLine = false
		lineStart = len(buf)
	}
}

// nextLine splits off the first CRLF-terminated line of head.
func nextLine(head []byte) (line, rest []byte) {
	i := bytes.IndexByte(head, '\n')
	return head[:i-1], head[i+1:]
}

// ParseRequest parses a head read by ReadHead into req (reset first).
func ParseRequest(head []byte, req *exchange.Request) error {
	req.Reset()
	line, rest := nextLine(head)
	if bytes.IndexByte(line, '\r') >= 0 {
		return errBadRequestLine
	}
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 <= 0 {
		return errBadRequestLine
	}
	method := line[:sp1]
	if !IsToken(method) {
		return errBadMethod
	}
	line = line[sp1+1:]
	sp2 := bytes.IndexByte(line, ' ')
	if sp2 <= 0 {
		return errBadRequestLine
	}
	target, version := line[:sp2], line[sp2+1:]
	for _, c := range target {
		if !isTargetByte[c] {
			return errBadTarget
		}
	}
	minor, err := parseVersion(version)
	if err != nil {
		return err
	}
	req.Method = method
	req.ProtoMinor = minor
	req.ContentLength = 0

	var authority []byte
	switch {
	case target[0] == '/':
	case target[0] == '*' && len(target) == 1:
		if string(method) != "OPTIONS" {
			return errBadTarget
		}
	default:
		// absolute-form; authority-form (CONNECT) has no place at a reverse proxy.
		var ok bool
		authority, target, ok = splitAbsolute(target)
		if !ok {
			return errBadTarget
		}
	}
	if q := bytes.IndexByte(target, '?'); q >= 0 {
		req.Path, req.Query, req.HasQuery = target[:q], target[q+1:], true
	} else {
		req.Path = target
	}
	if i := bytes.IndexByte(req.Path, '#'); i >= 0 || !validEscapes(req.Path) {
		return errBadTarget
	}

	var (
		hosts      int
		clSeen     bool
		teChunked  bool
		teSeen     bool
		keepAlive  bool
		connClose  bool
		connUpgr   bool
		upgrade    []byte
		expectCont bool
	)
	for len(rest) > 2 {
		var f []byte
		f, rest = nextLine(rest)
		name, value, err := splitField(f)
		if err != nil {
			return err
		}
		req.Header = append(req.Header, exchange.Header{Name: name, Value: value})
		switch len(name) {
		case 4:
			if exchange.EqualFold(name, "host") {
				hosts++
				if hosts > 1 {
					return errManyHosts
				}
				if !validHost(value) {
					return errBadHost
				}
				req.Host = value
			}
		case 6:
			if exchange.EqualFold(name, "expect") {
				// Only 100-continue is defined; anything else gets 417 from the backend.
				expectCont = exchange.EqualFold(value, "100-continue")
			}
		case 7:
			if exchange.EqualFold(name, "upgrade") {
				upgrade = value
			}
		case 10:
			if exchange.EqualFold(name, "connection") {
				connClose = connClose || exchange.HasToken(value, "close")
				keepAlive = keepAlive || exchange.HasToken(value, "keep-alive")
				connUpgr = connUpgr || exchange.HasToken(value, "upgrade")
			}
		case 14:
			if exchange.EqualFold(name, "content-length") {
				n, ok := parseDecimal(value)
				if !ok {
					return errBadCL
				}
				if clSeen && n != req.ContentLength {
					return errCLMismatch
				}
				clSeen = true
				req.ContentLength = n
			}
		case 17:
			if exchange.EqualFold(name, "transfer-encoding") {
				// Exactly one "chunked" and nothing else: every other coding, list
				// or spelling is a classic desync vector, so it is refused.
				if teSeen || !exchange.EqualFold(value, "chunked") {
					return errBadTE
				}
				teSeen, teChunked = true, true
			}
		}
	}
	if teSeen {
		if clSeen {
			return errCLAndTE
		}
		if minor == 0 {
			return errTEInHTTP10
		}
	}
	req.Chunked = teChunked
	if teChunked {
		req.ContentLength = -1
	}
	if authority != nil {
		if !validHost(authority) {
			return errBadHost
		}
		if hosts == 0 {
			req.Host = authority
		} else if !bytes.EqualFold(authority, req.Host) {
			return errHostMismatch
		}
	} else if hosts == 0 && minor == 1 {
		return errNoHost
	}
	if minor == 0 {
		req.Close = connClose || !keepAlive
	} else {
		req.Close = connClose
	}
	req.Expect100 = expectCont && minor == 1
	if connUpgr && upgrade != nil && minor == 1 {
		req.Upgrade = upgrade
	}
	return nil
}

func parseVersion(v []byte) (int, error) {
	if len(v) != 8 || string(v[:5]) != "HTTP/" || v[6] != '.' || v[5] < '0' || v[5] > '9' || v[7] < '0' || v[7] > '9' {
		return 0, errBadVersion
	}
	if v[5] != '1' {
		return 0, errVersion
	}
	if v[7] > '1' {
		// HTTP/1.2+ would be answered as 1.1 (RFC 9110 §6.2); none exists.
		return 1, nil
	}
	return int(v[7] - '0'), nil
}

// splitAbsolute splits "http://authority/path?q" into its authority and
// origin-form target ("/" when the path is empty).
func splitAbsolute(t []byte) (authority, target []byte, ok bool) {
	var rest []byte
	switch {
	case len(t) > 7 && exchange.EqualFold(t[:7], "http://"):
		rest = t[7:]
	case len(t) > 8 && exchange.EqualFold(t[:8], "https://"):
		rest = t[8:]
	default:
		return nil, nil, false
	}
	end := len(rest)
	if i := bytes.IndexAny(rest, "/?"); i >= 0 {
		end = i
	}
	authority, target = rest[:end], rest[end:]
	if len(target) == 0 || target[0] == '?' {
		// "/" is needed in front of a query; the slash itself is never part of
		// the buffer we point into, so use a static one when there is no query.
		if len(target) == 0 {
			target = slash
		} else {
			return nil, nil, false
		}
	}
	return authority, target, len(authority) > 0
}

var slash = []byte("/")

// splitField splits "Name: value" with the value's optional whitespace trimmed.
func splitField(f []byte) (name, value []byte, err error) {
	if len(f) > 0 && (f[0] == ' ' || f[0] == '\t') {
		return nil, nil, errObsFold
	}
	colon := bytes.IndexByte(f, ':')
	if colon <= 0 {
		return nil, nil, errBadHeader
	}
	name = f[:colon]
	if !IsToken(name) {
		// Includes "Name : value", which RFC 9112 §5.1 says must be rejected.
		return nil, nil, errBadHeader
	}
	value = exchange.TrimOWS(f[colon+1:])
	if !validValue(value) {
		return nil, nil, errBadHeader
	}
	return name, value, nil
}

// IsHeadError reports whether err came from the message parser.
func IsHeadError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// validEscapes checks that every '%' starts a two-digit hex escape
// (RFC 3986 §2.1), as net/http and nginx require.
func validEscapes(p []byte) bool {
	for i := bytes.IndexByte(p, '%'); i >= 0; i = bytes.IndexByte(p, '%') {
		if i+2 >= len(p) || !isHexDigit(p[i+1]) || !isHexDigit(p[i+2]) {
			return false
		}
		p = p[i+3:]
	}
	return true
}

func isHexDigit(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

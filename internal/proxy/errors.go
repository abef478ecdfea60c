package proxy

import (
	"net/http"
	"slices"
	"strconv"

	"github.com/gatehouse-proxy/gatehouse/internal/exchange"
)

// errorPage is a proxy-made answer: short, plain, the same for every cause,
// so that nothing of the inside (addresses, Go errors) reaches a client.
type errorPage struct {
	body    []byte
	headers exchange.Headers
}

var errorPages = func() map[int]*errorPage {
	m := map[int]*errorPage{}
	for _, s := range []int{400, 404, 408, 413, 414, 431, 500, 502, 503, 504} {
		m[s] = &errorPage{
			body: []byte(strconv.Itoa(s) + " " + http.StatusText(s) + "\n"),
			headers: exchange.Headers{
				{Name: []byte("Content-Type"), Value: []byte("text/plain; charset=utf-8")},
				{Name: []byte("X-Content-Type-Options"), Value: []byte("nosniff")},
				{Name: []byte("Cache-Control"), Value: []byte("no-store")},
			},
		}
	}
	return m
}()

// busyPage is the 503 of a pool whose targets are all at their connection
// cap: Retry-After tells clients that it passes.
var busyPage = &errorPage{
	body:    errorPages[503].body,
	headers: append(slices.Clip(errorPages[503].headers), exchange.Header{Name: []byte("Retry-After"), Value: []byte("1")}),
}

// WriteBusy answers 503 with Retry-After for a pool too busy to take the
// request now.
func WriteBusy(w exchange.ResponseWriter) int { return writePage(w, 503, busyPage) }

// WriteError answers with a proxy error page, unless a response has already
// begun (then the client connection is broken off). It returns status.
func WriteError(w exchange.ResponseWriter, status int) int {
	p := errorPages[status]
	if p == nil {
		p = errorPages[500]
	}
	return writePage(w, status, p)
}

func writePage(w exchange.ResponseWriter, status int, p *errorPage) int {
	if sent, _ := w.Written(); sent {
		w.Abort()
		return status
	}
	if w.WriteHead(status, nil, p.headers, int64(len(p.body))) == nil {
		w.Write(p.body)
	}
	return status
}

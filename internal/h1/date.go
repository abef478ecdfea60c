package h1

import (
	"bufio"
	"net/http"
	"sync/atomic"
	"time"
)

// Formatting the Date field costs more than the rest of a response head, and
// it changes once a second: keep the formatted value and its second.
type dateValue struct {
	sec  int64
	text []byte // "Date: Thu, 26 Nov 2026 05:18:16 GMT\r\n"
}

var currentDate atomic.Pointer[dateValue]

func writeDate(bw *bufio.Writer) {
	now := time.Now()
	d := currentDate.Load()
	if d == nil || d.sec != now.Unix() {
		t := make([]byte, 0, 40)
		t = append(t, "Date: "...)
		t = now.UTC().AppendFormat(t, http.TimeFormat)
		t = append(t, "\r\n"...)
		d = &dateValue{sec: now.Unix(), text: t}
		currentDate.Store(d)
	}
	bw.Write(d.text)
}

//go:build race

package h1

import "syscall"

// rawIO, under the race detector, goes through package syscall: its Read
// and Write tell the detector that what one goroutine wrote to a socket
// happened before what another read from it, an order the raw system call
// would hide (and the detector would report tests' hand-overs as races).
func rawIO(trap uintptr, fd int, p []byte) (int, error) {
	if trap == syscall.SYS_READ {
		return syscall.Read(fd, p)
	}
	return syscall.Write(fd, p)
}

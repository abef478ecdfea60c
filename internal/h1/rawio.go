//go:build !race

package h1

import (
	"syscall"
	"unsafe"
)

// rawIO is read(2) or write(2) on a non-blocking socket without telling
// the scheduler: such a call never blocks, and one announced as a system
// call lets the runtime's monitor thread, which wakes every 20µs while it
// finds a processor in a system call, hand that processor to another
// thread. Under load that monitor took a tenth of the proxy's CPU time.
func rawIO(trap uintptr, fd int, p []byte) (int, error) {
	n, _, e := syscall.RawSyscall(trap, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

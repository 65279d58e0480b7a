//go:build unix && !linux

package engineio

import "syscall"

// sockWrite is one write(2) of p on the socket fd (Linux sends instead:
// sockwrite_linux.go).
func sockWrite(fd int, p []byte) (int, error) {
	return syscall.Write(fd, p)
}

package pivemu

import (
	"net"
	"syscall"
)

// quickAck turns on TCP_QUICKACK, which Linux clears after each ACK: vpcd
// sends a frame's length and payload in two writes without TCP_NODELAY, so
// a delayed ACK would cost about 40 ms per APDU.
func quickAck(c *net.TCPConn) {
	rc, err := c.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
	})
}

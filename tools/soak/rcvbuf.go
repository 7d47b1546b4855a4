// SPDX-License-Identifier: Apache-2.0

package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// nfcapdRcvbuf is the receive buffer the harness gives nfcapd's socket.
// nfcapd asks for its -B with SO_RCVBUF, which the host's
// net.core.rmem_max caps (4 MiB on many hosts, a few hundred
// milliseconds of the soak's export stream); the sysctl is not the
// network namespace's own, and the harness changes nothing on the host.
const nfcapdRcvbuf = 64 << 20

// forceRcvbuf sets the receive buffer of every UDP socket of process pid
// to size with SO_RCVBUFFORCE, which root may set past rmem_max, on a
// copy of the process's descriptor (pidfd_getfd: the same socket). It
// returns the buffer the kernel granted to the last one.
func forceRcvbuf(pid, size int) (int, error) {
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return 0, fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	defer unix.Close(pidfd)
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	granted := 0
	for _, ent := range ents {
		link, err := os.Readlink(dir + "/" + ent.Name())
		if err != nil || !strings.HasPrefix(link, "socket:") {
			continue
		}
		target, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		fd, err := unix.PidfdGetfd(pidfd, target, 0)
		if err != nil {
			return 0, fmt.Errorf("pidfd_getfd %d fd %d: %w", pid, target, err)
		}
		proto, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PROTOCOL)
		if err == nil && proto == unix.IPPROTO_UDP {
			if err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, size); err == nil {
				granted, err = unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF)
			}
		}
		unix.Close(fd)
		if err != nil {
			return 0, fmt.Errorf("process %d socket fd %d: %w", pid, target, err)
		}
	}
	if granted == 0 {
		return 0, fmt.Errorf("process %d has no UDP socket", pid)
	}
	return granted, nil
}

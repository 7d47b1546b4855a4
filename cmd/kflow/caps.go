// SPDX-License-Identifier: Apache-2.0

package main

import (
	"fmt"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// capNames are the Linux capability names, by number.
var capNames = [...]string{
	"CAP_CHOWN",
	"CAP_DAC_OVERRIDE",
	"CAP_DAC_READ_SEARCH",
	"CAP_FOWNER",
	"CAP_FSETID",
	"CAP_KILL",
	"CAP_SETGID",
	"CAP_SETUID",
	"CAP_SETPCAP",
	"CAP_LINUX_IMMUTABLE",
	"CAP_NET_BIND_SERVICE",
	"CAP_NET_BROADCAST",
	"CAP_NET_ADMIN",
	"CAP_NET_RAW",
	"CAP_IPC_LOCK",
	"CAP_IPC_OWNER",
	"CAP_SYS_MODULE",
	"CAP_SYS_RAWIO",
	"CAP_SYS_CHROOT",
	"CAP_SYS_PTRACE",
	"CAP_SYS_PACCT",
	"CAP_SYS_ADMIN",
	"CAP_SYS_BOOT",
	"CAP_SYS_NICE",
	"CAP_SYS_RESOURCE",
	"CAP_SYS_TIME",
	"CAP_SYS_TTY_CONFIG",
	"CAP_MKNOD",
	"CAP_LEASE",
	"CAP_AUDIT_WRITE",
	"CAP_AUDIT_CONTROL",
	"CAP_SETFCAP",
	"CAP_MAC_OVERRIDE",
	"CAP_MAC_ADMIN",
	"CAP_SYSLOG",
	"CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND",
	"CAP_AUDIT_READ",
	"CAP_PERFMON",
	"CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

func capName(c int) string {
	if c >= 0 && c < len(capNames) {
		return capNames[c]
	}
	return fmt.Sprintf("cap_%d", c)
}

// keepOnlyCaps reduces the process's effective, permitted and inheritable
// capabilities to keep, on every thread, and drops every other capability
// from the bounding set, so that nothing can get them back. It returns the
// capabilities it dropped. It needs a binary without cgo (syscall.
// AllThreadsSyscall); with cgo it returns an error and changes nothing.
func keepOnlyCaps(keep ...int) (dropped []string, err error) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var cur [2]unix.CapUserData
	if err := unix.Capget(&hdr, &cur[0]); err != nil {
		return nil, fmt.Errorf("read capabilities: %w", err)
	}
	var want [2]unix.CapUserData
	for _, c := range keep {
		i, bit := c/32, uint32(1)<<(c%32)
		if cur[i].Permitted&bit != 0 {
			want[i].Permitted |= bit
			want[i].Effective |= bit
		}
	}
	for c := 0; c < 64; c++ {
		i, bit := c/32, uint32(1)<<(c%32)
		if cur[i].Permitted&bit != 0 && want[i].Permitted&bit == 0 {
			dropped = append(dropped, capName(c))
		}
	}
	// Bounding set first: it needs CAP_SETPCAP, which goes after. Without
	// CAP_SETPCAP (a service manager may withhold it) the bounding set stays
	// as it is; the permitted set below still shrinks, and what leaves the
	// permitted set cannot come back without an exec.
	if cur[unix.CAP_SETPCAP/32].Permitted&(1<<(unix.CAP_SETPCAP%32)) != 0 {
		for c := 0; c <= unix.CAP_LAST_CAP; c++ {
			if want[c/32].Permitted&(uint32(1)<<(c%32)) != 0 {
				continue
			}
			if _, _, e := syscall.AllThreadsSyscall(unix.SYS_PRCTL, unix.PR_CAPBSET_DROP, uintptr(c), 0); e != 0 && e != unix.EINVAL {
				return nil, fmt.Errorf("drop %s from the bounding set: %w", capName(c), e)
			}
		}
	}
	if _, _, e := syscall.AllThreadsSyscall(unix.SYS_CAPSET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&want[0])), 0); e != 0 {
		return nil, fmt.Errorf("set capabilities: %w", e)
	}
	return dropped, nil
}

func capList(cs []string) string {
	if len(cs) == 0 {
		return "none"
	}
	return strings.Join(cs, ",")
}

// SPDX-License-Identifier: Apache-2.0

package testenv

import (
	"encoding/binary"
	"fmt"
	"os"
	"path"
	"runtime"
	"sort"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Sysctl sets network sysctls (net.*) inside the namespace, as sysctl -w
// would, without the sysctl binary: /proc/sys/net belongs to the network
// namespace of the thread that opens it.
func (n *NS) Sysctl(kv map[string]string) error {
	keys := make([]string, 0, len(kv))
	for k := range kv {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return n.Do(func() error {
		for _, k := range keys {
			if !strings.HasPrefix(k, "net.") && !strings.HasPrefix(k, "net/") {
				return fmt.Errorf("sysctl %s in %s: not a network sysctl", k, n.Name)
			}
			// Like sysctl, take a/b/c where a name holds a dot (eth0.100).
			p := "/proc/sys/" + k
			if !strings.Contains(k, "/") {
				p = "/proc/sys/" + strings.ReplaceAll(k, ".", "/")
			}
			if err := os.WriteFile(p, []byte(kv[k]), 0); err != nil {
				return fmt.Errorf("sysctl %s=%s in %s: %w", k, kv[k], n.Name, err)
			}
		}
		return nil
	})
}

// ethtool commands (linux/ethtool.h).
const (
	ethtoolGStrings  = 0x1b
	ethtoolGSsetInfo = 0x37
	ethtoolSFeatures = 0x3b
	ethSSFeatures    = 4 // the string set of feature names
	ethGStringLen    = 32
)

// offloadFeatures are the features ethtool -K turns off for "tso off gso
// off gro off", as name patterns (path.Match) over the kernel's feature
// names: every TCP segmentation offload, software GSO and GRO.
var offloadFeatures = []string{"tx-tcp*-segmentation", "tx-generic-segmentation", "rx-gro"}

// ifreqData is struct ifreq with ifr_data, for SIOCETHTOOL.
type ifreqData struct {
	name [unix.IFNAMSIZ]byte
	data uintptr
	_    [24 - unsafe.Sizeof(uintptr(0))]byte
}

// ethtool runs one SIOCETHTOOL command whose struct is buf (it starts
// with the command number).
func ethtool(fd int, ifname string, buf []byte) error {
	var ifr ifreqData
	copy(ifr.name[:unix.IFNAMSIZ-1], ifname)
	ifr.data = uintptr(unsafe.Pointer(&buf[0]))
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr)))
	runtime.KeepAlive(buf)
	if errno != 0 {
		return errno
	}
	return nil
}

// disableOffloads turns TSO, GSO and GRO off on an interface of the
// calling thread's namespace, as "ethtool -K IF tso off gso off gro off"
// does: it reads the kernel's feature names and clears the matching ones
// with ETHTOOL_SFEATURES.
func disableOffloads(ifname string) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("ethtool socket: %w", err)
	}
	defer unix.Close(fd)
	ne := binary.NativeEndian

	// struct ethtool_sset_info with one data word: the number of features.
	info := make([]byte, 20)
	ne.PutUint32(info[0:], ethtoolGSsetInfo)
	ne.PutUint64(info[8:], 1<<ethSSFeatures)
	if err := ethtool(fd, ifname, info); err != nil {
		return fmt.Errorf("ethtool %s: feature count: %w", ifname, err)
	}
	if ne.Uint64(info[8:]) == 0 {
		return fmt.Errorf("ethtool %s: the kernel has no feature names", ifname)
	}
	n := int(ne.Uint32(info[16:]))
	if n <= 0 || n > 4096 {
		return fmt.Errorf("ethtool %s: %d features", ifname, n)
	}

	// struct ethtool_gstrings: the names, 32 bytes each.
	names := make([]byte, 12+n*ethGStringLen)
	ne.PutUint32(names[0:], ethtoolGStrings)
	ne.PutUint32(names[4:], ethSSFeatures)
	ne.PutUint32(names[8:], uint32(n))
	if err := ethtool(fd, ifname, names); err != nil {
		return fmt.Errorf("ethtool %s: feature names: %w", ifname, err)
	}

	// struct ethtool_sfeatures: {valid, requested} per 32 features.
	words := (n + 31) / 32
	set := make([]byte, 8+8*words)
	ne.PutUint32(set[0:], ethtoolSFeatures)
	ne.PutUint32(set[4:], uint32(words))
	matched := map[string]bool{}
	for i := 0; i < n; i++ {
		raw := names[12+i*ethGStringLen : 12+(i+1)*ethGStringLen]
		name := string(raw[:max(0, strings.IndexByte(string(raw), 0))])
		for _, pat := range offloadFeatures {
			if ok, _ := path.Match(pat, name); ok {
				matched[pat] = true
				off := 8 + 8*(i/32)
				ne.PutUint32(set[off:], ne.Uint32(set[off:])|1<<(i%32)) // valid; requested stays 0
			}
		}
	}
	for _, pat := range offloadFeatures {
		if !matched[pat] {
			return fmt.Errorf("ethtool %s: no feature named %s", ifname, pat)
		}
	}
	if err := ethtool(fd, ifname, set); err != nil {
		return fmt.Errorf("ethtool -K %s tso off gso off gro off: %w", ifname, err)
	}
	return nil
}

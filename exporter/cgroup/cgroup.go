// SPDX-License-Identifier: Apache-2.0

// Package cgroup turns the cgroup v2 ids the datapath reads from sockets
// into cgroup paths: the id of a cgroup is its directory's inode number
// in the cgroup v2 file system, so a walk of the mount finds it. Answers
// are cached, the cache is bounded, and walks are rate-limited.
package cgroup

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// ErrNoCgroup2 is returned by Mount when no cgroup v2 file system is
// mounted.
var ErrNoCgroup2 = errors.New("no cgroup2 file system mounted")

// Mount returns where the cgroup v2 file system is mounted, from
// /proc/self/mounts: /sys/fs/cgroup on a unified layout,
// /sys/fs/cgroup/unified on systemd's hybrid one. A process whose mount
// namespace has none (started by "ip netns exec", which mounts a sysfs
// of its own) reaches the host's through /proc/1/root when it may.
func Mount() (string, error) {
	m, err := mountIn("/proc/self/mounts")
	if !errors.Is(err, ErrNoCgroup2) {
		return m, err
	}
	if m1, err1 := mountIn("/proc/1/mounts"); err1 == nil {
		if _, err2 := os.Stat(filepath.Join("/proc/1/root", m1, "cgroup.procs")); err2 == nil {
			return filepath.Join("/proc/1/root", m1), nil
		}
	}
	return "", err
}

func mountIn(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("find the cgroup2 mount: %w", err)
	}
	defer f.Close()
	return mountFrom(f)
}

func mountFrom(r io.Reader) (string, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 3 && f[2] == "cgroup2" {
			return unescapeMount(f[1]), nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("read mounts: %w", err)
	}
	return "", ErrNoCgroup2
}

// unescapeMount undoes the octal escapes of /proc/mounts (\040 for a
// space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			v := 0
			ok := true
			for _, c := range s[i+1 : i+4] {
				if c < '0' || c > '7' {
					ok = false
					break
				}
				v = v*8 + int(c-'0')
			}
			if ok {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Defaults of Config.
const (
	DefaultMaxEntries = 16384
	DefaultMinRescan  = time.Second
	// maxWalk bounds the directories one walk visits.
	maxWalk = 1 << 20
)

// Config configures a Resolver; zero fields take the defaults.
type Config struct {
	// Root is the cgroup v2 mount; default Mount().
	Root string
	// MaxEntries bounds the cached ids (paths and misses): past it the
	// cache starts afresh.
	MaxEntries int
	// MinRescan is the least time between two walks: an id not found
	// stays unknown until a walk after it.
	MinRescan time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Stats are a Resolver's counters.
type Stats struct {
	Walks   uint64 // walks of the hierarchy
	Hits    uint64 // answers from the cache
	Misses  uint64 // ids no walk found (removed cgroups, other hierarchies)
	Entries int    // ids cached now
}

// Resolver maps cgroup ids to paths. It is not safe for concurrent use.
type Resolver struct {
	cfg      Config
	paths    map[uint64]string // "" for an id the last walk did not find
	lastWalk time.Time
	stats    Stats
}

// New returns a resolver of the cgroup v2 hierarchy at cfg.Root.
func New(cfg Config) (*Resolver, error) {
	if cfg.Root == "" {
		root, err := Mount()
		if err != nil {
			return nil, err
		}
		cfg.Root = root
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = DefaultMaxEntries
	}
	if cfg.MinRescan <= 0 {
		cfg.MinRescan = DefaultMinRescan
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if _, err := os.Stat(cfg.Root); err != nil {
		return nil, fmt.Errorf("cgroup2 root: %w", err)
	}
	return &Resolver{cfg: cfg, paths: make(map[uint64]string)}, nil
}

// Root returns the cgroup v2 mount the resolver walks.
func (r *Resolver) Root() string { return r.cfg.Root }

// Stats returns the resolver's counters.
func (r *Resolver) Stats() Stats {
	s := r.stats
	s.Entries = len(r.paths)
	return s
}

// Path returns the path below the cgroup v2 root of cgroup id ("/" for
// the root, "/system.slice/nginx.service"), or "" when id is 0 or no
// cgroup of the hierarchy has it (any more).
func (r *Resolver) Path(id uint64) string {
	if id == 0 {
		return ""
	}
	if p, ok := r.paths[id]; ok && p != "" {
		r.stats.Hits++
		return p
	} else if ok && r.cfg.Now().Sub(r.lastWalk) < r.cfg.MinRescan {
		r.stats.Hits++
		return ""
	}
	r.walk()
	p, ok := r.paths[id]
	if !ok {
		r.stats.Misses++
		r.paths[id] = "" // until the next walk
	}
	return p
}

// walk records the id of every cgroup of the hierarchy.
func (r *Resolver) walk() {
	r.stats.Walks++
	r.lastWalk = r.cfg.Now()
	if len(r.paths) >= r.cfg.MaxEntries {
		clear(r.paths)
	}
	n := 0
	_ = filepath.WalkDir(r.cfg.Root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // a cgroup removed during the walk
		}
		if !d.IsDir() {
			return nil
		}
		if n++; n > maxWalk {
			return filepath.SkipAll
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		rel := strings.TrimPrefix(p, r.cfg.Root)
		if rel == "" {
			rel = "/"
		}
		if len(r.paths) < r.cfg.MaxEntries {
			r.paths[st.Ino] = rel
		}
		return nil
	})
}

// ID returns the cgroup id of the cgroup directory dir (its inode
// number): what the datapath reads for a socket of that cgroup.
func ID(dir string) (uint64, error) {
	info, err := os.Stat(dir)
	if err != nil {
		return 0, fmt.Errorf("cgroup id: %w", err)
	}
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, fmt.Errorf("cgroup id of %s: no inode number", dir)
	}
	return st.Ino, nil
}

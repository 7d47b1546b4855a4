// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/kflow-dev/kflow/tools/testenv"
)

// namePrefix marks everything the harness creates: network namespaces
// (kflow-benchcmp-a-PID-N, made by testenv.NewPairE) and work directories
// (kflow-benchcmp-PID-*), so that a run can clean up after one that was
// killed before its own cleanup ran.
const namePrefix = "kflow-benchcmp-"

// Env is the topology: namespace A holds the observed veth end, the
// collectors (on A's loopback) and the exporter; namespace B holds the
// traffic generators, which send out of B's end into A.
type Env struct {
	*testenv.Pair
	Dir string

	mu    sync.Mutex
	procs []*Proc
}

// cleanLeftovers removes the namespaces and work directories of earlier
// runs whose harness process is gone, after ending the processes still
// running inside those namespaces (programs an earlier run started).
func cleanLeftovers(logf func(string, ...any)) {
	ents, _ := os.ReadDir("/run/netns")
	for _, e := range ents {
		name := e.Name()
		rest, ok := strings.CutPrefix(name, namePrefix)
		if !ok || ownerAlive(rest, 1) {
			continue
		}
		out, _ := exec.Command("ip", "netns", "pids", name).Output()
		for _, f := range strings.Fields(string(out)) {
			if pid, err := strconv.Atoi(f); err == nil && pid > 1 {
				logf("leftover: ending pid %d in namespace %s", pid, name)
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		logf("leftover: removing namespace %s", name)
		if out, err := exec.Command("ip", "netns", "delete", name).CombinedOutput(); err != nil {
			logf("leftover: %s: %v: %s", name, err, out)
		}
	}
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), namePrefix+"*"))
	for _, d := range dirs {
		if !ownerAlive(strings.TrimPrefix(filepath.Base(d), namePrefix), 0) {
			logf("leftover: removing %s", d)
			_ = os.RemoveAll(d)
		}
	}
}

// ownerAlive reports whether the PID in field i of a dash-separated name
// suffix (a-PID-N: field 1; PID-xxx: field 0) is a running benchcmp.
func ownerAlive(suffix string, i int) bool {
	f := strings.Split(suffix, "-")
	if len(f) <= i {
		return false
	}
	pid, err := strconv.Atoi(f[i])
	if err != nil {
		return false
	}
	if pid == os.Getpid()%100000 || pid == os.Getpid() {
		return true
	}
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return err == nil && strings.TrimSpace(string(comm)) == "benchcmp"
}

// NewEnv creates the namespaces (IPv6 off on the veth, so that the
// kernel sends nothing of its own through it) and a work directory.
func NewEnv() (*Env, func(), error) {
	p, cleanupPair, err := testenv.NewPairE("benchcmp")
	if err != nil {
		return nil, func() {}, fmt.Errorf("create namespaces (run as root): %w", err)
	}
	e := &Env{Pair: p}
	cleanup := func() {
		e.killAll()
		cleanupPair()
		if e.Dir != "" {
			_ = os.RemoveAll(e.Dir)
		}
	}
	if err := p.DisableIPv6(); err != nil {
		cleanup()
		return nil, func() {}, err
	}
	if e.Dir, err = os.MkdirTemp("", fmt.Sprintf("%s%d-", namePrefix, os.Getpid())); err != nil {
		cleanup()
		return nil, func() {}, err
	}
	return e, cleanup, nil
}

// RxPackets returns the packets A's veth end has received.
func (e *Env) RxPackets() (uint64, error) {
	var n uint64
	err := e.A.Do(func() error {
		l, err := netlink.LinkByName(e.AIf)
		if err != nil {
			return err
		}
		n = l.Attrs().Statistics.RxPackets
		return nil
	})
	return n, err
}

// FlushPcap sends non-IP frames (ethertype 0x88b5, IEEE local
// experimental) from B to A. libpcap's TPACKET_V3 ring hands packets to
// softflowd, fprobe and pmacctd only when a ring block fills up (none
// asks for immediate mode), so without them the end of the traffic can
// sit in a half-full block. Every probe ignores non-IP frames.
func (e *Env) FlushPcap(frames int) error {
	return e.B.Do(func() error {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		frame := make([]byte, 64)
		copy(frame[0:], genDstMAC)
		copy(frame[6:], genSrcMAC)
		frame[12], frame[13] = 0x88, 0xb5
		to := &unix.SockaddrLinklayer{Ifindex: e.BIndex, Halen: 6}
		copy(to.Addr[:], genDstMAC)
		for range frames {
			if err := unix.Sendto(fd, frame, 0, to); err != nil && !errors.Is(err, unix.ENOBUFS) {
				return err
			}
		}
		return nil
	})
}

// Proc is a program the harness started inside a namespace.
type Proc struct {
	Name string
	cmd  *exec.Cmd
	out  lockedBuffer
	done chan struct{}
	err  error
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() > 1<<20 {
		return len(p), nil // keep the first MiB
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Start runs name inside ns with "ip netns exec", which execs the program
// in place: the PID is the program's own.
func (e *Env) Start(ns *testenv.NS, name string, args ...string) (*Proc, error) {
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns.Name, name}, args...)...)
	p := &Proc{Name: filepath.Base(name), cmd: cmd, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = &p.out, &p.out
	// Its own process group: a ^C on the harness reaches the harness
	// only, which then stops everything in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s in %s: %w", name, ns.Name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	e.mu.Lock()
	e.procs = append(e.procs, p)
	e.mu.Unlock()
	return p, nil
}

// PID is the process id.
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Output is what the process printed (its first MiB).
func (p *Proc) Output() string { return p.out.String() }

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Wait waits at most d for the process to end.
func (p *Proc) Wait(d time.Duration) error {
	select {
	case <-p.done:
		return p.err
	case <-time.After(d):
		return fmt.Errorf("%s (pid %d) still running after %v", p.Name, p.PID(), d)
	}
}

// Stop signals the process (its PID) and waits at most d, then kills it
// and the processes it started.
func (p *Proc) Stop(sig os.Signal, d time.Duration) error {
	if p.Exited() {
		return fmt.Errorf("%s (pid %d) had already exited: %v", p.Name, p.PID(), p.err)
	}
	_ = p.cmd.Process.Signal(sig)
	if err := p.Wait(d); err == nil || p.Exited() {
		return err
	}
	p.kill()
	return fmt.Errorf("%s (pid %d) did not stop within %v on %v: killed", p.Name, p.PID(), d, sig)
}

// kill ends the process and its descendants, by PID.
func (p *Proc) kill() {
	if p.Exited() {
		return
	}
	for _, pid := range descendants(p.PID()) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	<-p.done
}

func (e *Env) killAll() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, p := range e.procs {
		p.kill()
	}
}

// Run runs a command to completion inside ns and returns its output.
func (e *Env) Run(ns *testenv.NS, timeout time.Duration, name string, args ...string) (string, error) {
	p, err := e.Start(ns, name, args...)
	if err != nil {
		return "", err
	}
	if err := p.Wait(timeout); err != nil {
		p.kill()
		return p.Output(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, lastLines(p.Output(), 5))
	}
	return p.Output(), nil
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// CPU is the process's user plus system time, once it has exited
// (getrusage of the child: the whole life, shutdown included).
func (p *Proc) CPU() time.Duration {
	u, s := p.UserSys()
	return u + s
}

// UserSys is CPU's split between user space and the kernel.
func (p *Proc) UserSys() (user, sys time.Duration) {
	if !p.Exited() || p.cmd.ProcessState == nil {
		return 0, 0
	}
	return p.cmd.ProcessState.UserTime(), p.cmd.ProcessState.SystemTime()
}

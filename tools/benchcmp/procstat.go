// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// CPU and memory figures from /proc. USER_HZ is 100 on every Linux
// architecture Go supports (the kernel converts to it for user space).
const userHZ = 100

func ticks(t uint64) time.Duration { return time.Duration(t) * time.Second / userHZ }

// ProcCPU is a process's CPU time.
type ProcCPU struct {
	User, System time.Duration
	PPID         int
}

// Total is user plus system time.
func (c ProcCPU) Total() time.Duration { return c.User + c.System }

// parseProcStat parses /proc/PID/stat: the fields after the command name
// (which is in parentheses and may hold spaces and parentheses itself).
func parseProcStat(s string) (ProcCPU, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return ProcCPU{}, fmt.Errorf("proc stat: no command name in %q", s)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state): utime is field 14, stime 15, ppid 4.
	if len(f) < 13 {
		return ProcCPU{}, fmt.Errorf("proc stat: %d fields", len(f)+2)
	}
	ppid, err1 := strconv.Atoi(f[1])
	ut, err2 := strconv.ParseUint(f[11], 10, 64)
	st, err3 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return ProcCPU{}, fmt.Errorf("proc stat: bad numbers in %q", s)
	}
	return ProcCPU{User: ticks(ut), System: ticks(st), PPID: ppid}, nil
}

// readProcCPU reads a process's CPU time.
func readProcCPU(pid int) (ProcCPU, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ProcCPU{}, err
	}
	return parseProcStat(string(b))
}

// parseVmHWM returns the peak resident set size in /proc/PID/status.
func parseVmHWM(s string) (uint64, error) {
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("proc status: VmHWM %q", rest)
		}
		kb, err := strconv.ParseUint(f[0], 10, 64)
		return kb * 1024, err
	}
	return 0, fmt.Errorf("proc status: no VmHWM")
}

// descendants returns pid and every process below it.
func descendants(pid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return []int{pid}
	}
	children := map[int][]int{}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		c, err := readProcCPU(p)
		if err != nil {
			continue
		}
		children[c.PPID] = append(children[c.PPID], p)
	}
	out := []int{pid}
	for i := 0; i < len(out) && i < 1024; i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// TreeUsage is a process tree's CPU time and summed peak RSS.
type TreeUsage struct {
	CPU  time.Duration
	Peak uint64 // bytes: the sum of each process's VmHWM
}

// readTree reads the CPU time and peak RSS of pid and its descendants
// (pmacctd runs its plugins as child processes).
func readTree(pid int) TreeUsage {
	var u TreeUsage
	for _, p := range descendants(pid) {
		if c, err := readProcCPU(p); err == nil {
			u.CPU += c.Total()
		}
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p)); err == nil {
			if hwm, err := parseVmHWM(string(b)); err == nil {
				u.Peak += hwm
			}
		}
	}
	return u
}

// SysCPU is the whole system's CPU time from /proc/stat.
type SysCPU struct {
	Busy, Idle time.Duration // summed over CPUs
}

// parseSysStat parses the aggregate "cpu" line of /proc/stat: busy is
// user+nice+system+irq+softirq+steal, idle is idle+iowait (guest time is
// already inside user).
func parseSysStat(s string) (SysCPU, error) {
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 9 || f[0] != "cpu" {
			continue
		}
		var v [8]uint64
		for i := range v {
			n, err := strconv.ParseUint(f[1+i], 10, 64)
			if err != nil {
				return SysCPU{}, fmt.Errorf("proc stat: %q: %w", sc.Text(), err)
			}
			v[i] = n
		}
		user, nice, system, idle, iowait, irq, softirq, steal := v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]
		return SysCPU{Busy: ticks(user + nice + system + irq + softirq + steal), Idle: ticks(idle + iowait)}, nil
	}
	return SysCPU{}, fmt.Errorf("proc stat: no cpu line")
}

func readSysCPU() (SysCPU, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return SysCPU{}, err
	}
	return parseSysStat(string(b))
}

// SPDX-License-Identifier: Apache-2.0

package promtext

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"syscall"
)

// userHZ is the unit of the CPU times in /proc/<pid>/stat: USER_HZ, 100 on
// every Linux architecture kflow builds for.
const userHZ = 100

// Process is a collector of the process's own resources (process_*) and
// of the Go runtime's (go_*), with the names Prometheus's client
// libraries use, so dashboards built for them work unchanged.
type Process struct {
	cpu, rss, vsize, fds, maxFDs, start *Desc
	goroutines, threads, info, procs    *Desc
	heapAlloc, sys, nextGC, gcCycles    *Desc
	samples                             []metrics.Sample
	pageSize                            int
	bootTime                            float64
}

// NewProcess returns the process and Go runtime collector.
func NewProcess() *Process {
	p := &Process{
		cpu:        NewDesc("process_cpu_seconds_total", "Total user and system CPU time spent in seconds."),
		rss:        NewDesc("process_resident_memory_bytes", "Resident memory size in bytes."),
		vsize:      NewDesc("process_virtual_memory_bytes", "Virtual memory size in bytes."),
		fds:        NewDesc("process_open_fds", "Number of open file descriptors."),
		maxFDs:     NewDesc("process_max_fds", "Maximum number of open file descriptors."),
		start:      NewDesc("process_start_time_seconds", "Start time of the process since unix epoch in seconds."),
		goroutines: NewDesc("go_goroutines", "Number of goroutines that currently exist."),
		threads:    NewDesc("go_threads", "Number of OS threads created."),
		info:       NewDesc("go_info", "Information about the Go environment.", "version"),
		procs:      NewDesc("go_sched_gomaxprocs_threads", "The current runtime.GOMAXPROCS setting."),
		heapAlloc:  NewDesc("go_memstats_heap_alloc_bytes", "Bytes of allocated heap objects, live or not yet freed."),
		sys:        NewDesc("go_memstats_sys_bytes", "Bytes of memory obtained from the OS by the Go runtime."),
		nextGC:     NewDesc("go_memstats_next_gc_bytes", "Heap size target of the next garbage collection."),
		gcCycles:   NewDesc("go_gc_cycles_total", "Garbage collection cycles completed."),
		samples: []metrics.Sample{
			{Name: "/memory/classes/heap/objects:bytes"},
			{Name: "/memory/classes/total:bytes"},
			{Name: "/gc/heap/goal:bytes"},
			{Name: "/gc/cycles/total:gc-cycles"},
		},
		pageSize: os.Getpagesize(),
		bootTime: -1,
	}
	if bt, err := readBootTime(); err == nil {
		p.bootTime = bt
	}
	return p
}

// Describe implements Collector.
func (p *Process) Describe() []*Desc {
	return []*Desc{p.cpu, p.rss, p.vsize, p.fds, p.maxFDs, p.start, p.goroutines, p.threads, p.info, p.procs,
		p.heapAlloc, p.sys, p.nextGC, p.gcCycles}
}

// Collect implements Collector. A /proc file that cannot be read leaves
// its metrics out of the scrape rather than failing it.
func (p *Process) Collect(w *Writer) {
	if st, err := readStat(); err == nil {
		w.Counter(p.cpu, float64(st.utime+st.stime)/userHZ)
		w.Gauge(p.rss, float64(st.rss*uint64(p.pageSize)))
		w.Gauge(p.vsize, float64(st.vsize))
		if p.bootTime >= 0 {
			w.Gauge(p.start, p.bootTime+float64(st.starttime)/userHZ)
		}
	}
	if ents, err := os.ReadDir("/proc/self/fd"); err == nil {
		w.Gauge(p.fds, float64(len(ents)-1)) // less the directory's own descriptor
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil {
		w.Gauge(p.maxFDs, float64(lim.Cur))
	}
	w.Gauge(p.goroutines, float64(runtime.NumGoroutine()))
	threads, _ := runtime.ThreadCreateProfile(nil)
	w.Gauge(p.threads, float64(threads))
	w.Gauge(p.info, 1, runtime.Version())
	w.Gauge(p.procs, float64(runtime.GOMAXPROCS(0)))
	metrics.Read(p.samples)
	for i, d := range []*Desc{p.heapAlloc, p.sys, p.nextGC} {
		if s := p.samples[i]; s.Value.Kind() == metrics.KindUint64 {
			w.Gauge(d, float64(s.Value.Uint64()))
		}
	}
	if s := p.samples[3]; s.Value.Kind() == metrics.KindUint64 {
		w.Counter(p.gcCycles, float64(s.Value.Uint64()))
	}
}

type procStat struct {
	utime, stime, starttime, vsize, rss uint64
}

// readStat reads the fields of /proc/self/stat that Collect reports.
func readStat() (procStat, error) {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return procStat{}, err
	}
	return parseStat(b)
}

// parseStat parses /proc/<pid>/stat: the command name, in parentheses,
// may hold spaces and parentheses, so the fields are counted from the last
// ')'. Fields are numbered as in proc(5): utime is 14, starttime 22.
func parseStat(b []byte) (procStat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("parse /proc/self/stat: no command name")
	}
	f := strings.Fields(string(b[i+1:])) // f[0] is field 3 (state)
	if len(f) < 22 {
		return procStat{}, fmt.Errorf("parse /proc/self/stat: %d fields", len(f)+2)
	}
	var st procStat
	for _, x := range []struct {
		field int
		v     *uint64
	}{{14, &st.utime}, {15, &st.stime}, {22, &st.starttime}, {23, &st.vsize}, {24, &st.rss}} {
		n, err := strconv.ParseUint(f[x.field-3], 10, 64)
		if err != nil {
			return procStat{}, fmt.Errorf("parse /proc/self/stat field %d: %w", x.field, err)
		}
		*x.v = n
	}
	return st, nil
}

// readBootTime returns the boot time in Unix seconds (btime in /proc/stat).
func readBootTime() (float64, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("parse /proc/stat: no btime")
}

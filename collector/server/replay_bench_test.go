// SPDX-License-Identifier: Apache-2.0

package server

import (
	"bytes"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/collector/flowfile"
	"github.com/kflow-dev/kflow/exporter/ipfix"
	"github.com/kflow-dev/kflow/tools/testenv"
)

// BenchmarkCollectorReplay measures "kflow collector run" end to end as
// tools/benchcmp's collector rows do, without their namespaces and third
// parties: 1<<20 distinct flows encoded once by kflow's IPFIX encoder
// (1400-octet messages), replayed over loopback UDP at 10,000 messages a
// second in bursts of 32, to the real binary (built by testenv). CPU is
// the collector process's user + system time from start to exit, its
// shutdown and final flush included, as benchcmp reads it. flows/cpu-s is
// the figure benchcmp reports as "flows/s per core".
//
// peak-MiB is the collector's peak resident set (VmHWM) before it is
// stopped, as benchcmp reads it.
//
// KFLOW_REPLAY_FLOWS changes the number of flows; KFLOW_REPLAY_RATE the
// messages a second; KFLOW_REPLAY_PROFILE=FILE
// passes --cpu-profile FILE to the collector, KFLOW_REPLAY_MEMPROFILE=FILE
// --mem-profile FILE; KFLOW_REPLAY_PERF=EVENTS
// logs what "perf stat -e EVENTS" counts in the collector;
// KFLOW_REPLAY_BIN=PATH replays to that kflow binary instead of one built
// from this tree (before/after pairs).
func BenchmarkCollectorReplay(b *testing.B) {
	n := 1 << 20
	if s := os.Getenv("KFLOW_REPLAY_FLOWS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil {
			b.Fatal(err)
		}
		n = v
	}
	bin := os.Getenv("KFLOW_REPLAY_BIN")
	if bin == "" {
		bin = testenv.KflowBinary(b)
	}
	msgs := encodeIPFIX(b, ipfix.Config{MTU: 1400}, distinctRecords(n), n)
	b.ResetTimer()
	var cpu time.Duration
	var peak uint64
	for range b.N {
		c, p := replayOnce(b, bin, msgs, n)
		cpu += c
		peak = max(peak, p)
	}
	b.StopTimer()
	b.ReportMetric(float64(n)*float64(b.N)/cpu.Seconds(), "flows/cpu-s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N)/1e6, "cpu-s/run")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(n*b.N), "cpu-ns/flow")
	b.ReportMetric(float64(peak)/(1<<20), "peak-MiB")
}

func replayOnce(b *testing.B, bin string, msgs [][]byte, flows int) (time.Duration, uint64) {
	b.Helper()
	tmp := b.TempDir()
	dir, ready := filepath.Join(tmp, "flows"), filepath.Join(tmp, "ready")
	args := []string{"collector", "run", "--dir", dir, "--no-default-listen", "--listen", "udp://127.0.0.1:0",
		"--ready-file", ready, "--log-level", "warn", "--stats-interval", "0"}
	if p := os.Getenv("KFLOW_REPLAY_PROFILE"); p != "" {
		args = append(args, "--cpu-profile", p)
	}
	if p := os.Getenv("KFLOW_REPLAY_MEMPROFILE"); p != "" {
		args = append(args, "--mem-profile", p)
	}
	cmd := exec.Command(bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer cmd.Process.Kill()
	var addr string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if bs, err := os.ReadFile(ready); err == nil {
			addr = strings.TrimPrefix(strings.TrimSpace(string(bs)), "udp://")
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("collector not ready: %s", out.String())
		}
	}
	if ev := os.Getenv("KFLOW_REPLAY_PERF"); ev != "" {
		// perf stat -e EVENTS on the collector, printed to the log.
		pc := exec.Command("perf", "stat", "-x", ",", "-e", ev, "-p", strconv.Itoa(cmd.Process.Pid))
		var pout bytes.Buffer
		pc.Stderr = &pout
		if err := pc.Start(); err != nil {
			b.Fatal(err)
		}
		defer func() {
			_ = pc.Process.Signal(syscall.SIGINT)
			_ = pc.Wait()
			b.Logf("perf stat:\n%s", pout.String())
		}()
	}
	conn, err := net.Dial("udp4", addr)
	if err != nil {
		b.Fatal(err)
	}
	// benchcmp's pacing: 10,000 messages a second, in bursts of 32.
	rate := 10000
	if s := os.Getenv("KFLOW_REPLAY_RATE"); s != "" {
		rate, _ = strconv.Atoi(s)
	}
	start := time.Now()
	for i, m := range msgs {
		if _, err := conn.Write(m); err != nil {
			b.Fatal(err)
		}
		if (i+1)%32 == 0 {
			time.Sleep(time.Until(start.Add(time.Duration(i+1) * time.Second / time.Duration(rate))))
		}
	}
	conn.Close()
	// As benchcmp's settle: wait until the collector is idle.
	prev := procCPU(cmd.Process.Pid)
	for range 40 {
		time.Sleep(250 * time.Millisecond)
		cur := procCPU(cmd.Process.Pid)
		if cur-prev <= 10*time.Millisecond {
			break
		}
		prev = cur
	}
	peak := procPeakRSS(cmd.Process.Pid)
	rss := procStatus(cmd.Process.Pid, "RssAnon:", "RssFile:")
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		b.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		b.Fatalf("collector: %v: %s", err, out.String())
	}
	cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	var stored int
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		r, err := flowfile.Open(p, flowfile.ReaderOptions{})
		if err != nil {
			return err
		}
		defer r.Close()
		for r.Next() {
			stored++
		}
		return r.Err()
	})
	if err != nil {
		b.Fatal(err)
	}
	if stored != flows {
		b.Fatalf("stored %d of %d flows: %s", stored, flows, out.String())
	}
	b.Logf("collector cpu %v (user %v, system %v), peak RSS %.1f MiB (at the end: %s), %d messages, send+settle %v, %.0f flows/cpu-s", cpu, cmd.ProcessState.UserTime(), cmd.ProcessState.SystemTime(), float64(peak)/(1<<20), rss, len(msgs), time.Since(start), float64(flows)/cpu.Seconds())
	return cpu, peak
}

// procStatus returns the named lines of /proc/PID/status, joined.
func procStatus(pid int, names ...string) string {
	bs, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ""
	}
	var out []string
	for _, l := range strings.Split(string(bs), "\n") {
		for _, n := range names {
			if strings.HasPrefix(l, n) {
				out = append(out, strings.Join(strings.Fields(l), " "))
			}
		}
	}
	return strings.Join(out, ", ")
}

// procPeakRSS returns the peak resident set size of a running process
// (VmHWM in /proc/PID/status), in bytes.
func procPeakRSS(pid int) uint64 {
	bs, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(bs), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			f := strings.Fields(rest)
			if len(f) == 2 && f[1] == "kB" {
				kb, _ := strconv.ParseUint(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

// procCPU returns the user + system time of a running process (clock
// ticks of /proc/PID/stat, 100 a second).
func procCPU(pid int) time.Duration {
	bs, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(bs)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		s = s[i+2:]
	}
	f := strings.Fields(s)
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+st) * 10 * time.Millisecond
}

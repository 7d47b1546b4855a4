// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kflow-dev/kflow/collector/flowfile"
	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/exporter/ipfix"
	"github.com/kflow-dev/kflow/tools/synthflow"
)

// Collector rows: one IPFIX export stream (records encoded by kflow's
// encoder, as its exporter sends them) replayed over A's loopback to each
// collector in turn. Query rows: nfdump and kflow's file commands on the
// flows those collectors stored.

// CollectorRun is one collector's figures for one run.
type CollectorRun struct {
	Name       string
	Sent       int
	Stored     uint64
	CPU        time.Duration // the collector process, start to exit
	User, Sys  time.Duration // CPU's split between user space and the kernel
	DiskBytes  int64
	PeakRSS    uint64
	SendPeriod time.Duration
	Err        error
}

// QueryRun is one query's figures for one run.
type QueryRun struct {
	Task, Tool string
	Command    string
	Wall, CPU  time.Duration
	Lines      int // output lines, a sanity check between the tools
	Err        error
}

const kflowCollectorPort = 4739

// replayRate is the export stream's pace in messages a second.
const replayRate = 10000

// encodeStream encodes recs as IPFIX messages of at most 1400 bytes.
func encodeStream(recs []flow.Record) ([][]byte, error) {
	enc, err := ipfix.NewEncoder(ipfix.Config{MTU: 1400})
	if err != nil {
		return nil, err
	}
	var msgs [][]byte
	_, err = enc.Encode(recs, func(p ipfix.Packet) error {
		msgs = append(msgs, append([]byte(nil), p.Bytes...))
		return nil
	})
	return msgs, err
}

// replay sends the messages to addr from A, paced at about rate messages
// a second in bursts of 32 (45 KB: nfcapd asks for a large receive buffer
// with SO_RCVBUF, which net.core.rmem_max caps, 208 KiB by default; the
// harness leaves host sysctls alone). Pacing keeps the comparison about
// CPU, not about socket buffer sizes.
func (e *Env) replay(addr string, msgs [][]byte, rate int) (time.Duration, error) {
	var conn net.Conn
	err := e.A.Do(func() (err error) {
		conn, err = net.Dial("udp4", addr)
		return err
	})
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	start := time.Now()
	for i, m := range msgs {
		if _, err := conn.Write(m); err != nil {
			return 0, fmt.Errorf("replay: %w", err)
		}
		if (i+1)%32 == 0 {
			due := start.Add(time.Duration(i+1) * time.Second / time.Duration(rate))
			time.Sleep(time.Until(due))
		}
	}
	return time.Since(start), nil
}

type collectorSpec struct {
	name  string
	start func(e *Env, dir string) (*Proc, string, error)
	count func(dir string) (uint64, error)
}

func collectorSpecs(kflow string) []collectorSpec {
	nf := func(extra ...string) func(e *Env, dir string) (*Proc, string, error) {
		return func(e *Env, dir string) (*Proc, string, error) {
			n, err := e.StartNfcapd(dir, extra...)
			if err != nil {
				return nil, "", err
			}
			return n.proc, fmt.Sprintf("127.0.0.1:%d", nfcapdPort), nil
		}
	}
	return []collectorSpec{
		{name: "kflow collector", count: countKflowFiles, start: func(e *Env, dir string) (*Proc, string, error) {
			ready := filepath.Join(filepath.Dir(dir), "collector.ready")
			_ = os.Remove(ready)
			p, err := e.Start(e.A, kflow, "collector", "run", "--dir", dir, "--no-default-listen", "--listen", fmt.Sprintf("udp://127.0.0.1:%d", kflowCollectorPort),
				"--ready-file", ready, "--log-level", "warn", "--stats-interval", "0")
			if err != nil {
				return nil, "", err
			}
			if !waitFor(10*time.Second, func() bool { _, err := os.Stat(ready); return err == nil || p.Exited() }) || p.Exited() {
				p.kill()
				return nil, "", fmt.Errorf("kflow collector not ready: %s", lastLines(p.Output(), 5))
			}
			return p, fmt.Sprintf("127.0.0.1:%d", kflowCollectorPort), nil
		}},
		{name: "nfcapd", count: countNfdump, start: nf()},
		{name: "nfcapd -y (LZ4)", count: countNfdump, start: nf("-y")},
	}
}

// countKflowFiles counts the flows stored under dir with kflow's reader.
func countKflowFiles(dir string) (uint64, error) {
	var n uint64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		r, err := flowfile.Open(p, flowfile.ReaderOptions{})
		if err != nil {
			return err
		}
		defer r.Close()
		for r.Next() {
			n++
		}
		return r.Err()
	})
	return n, err
}

var nfdumpFlows = regexp.MustCompile(`(?m)^Flows:\s+(\d+)`)

func countNfdump(dir string) (uint64, error) {
	out, err := exec.Command("nfdump", "-R", dir, "-I").CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("nfdump -I: %w: %s", err, out)
	}
	m := nfdumpFlows.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("nfdump -I: no flow count in %q", out)
	}
	return strconv.ParseUint(string(m[1]), 10, 64)
}

// collectorBench runs the collector rows, then the query rows on the
// files of the last run.
func collectorBench(ctx context.Context, e *Env, cfg *Config) ([]CollectorRun, []QueryRun, string) {
	// Distinct flows, 1 in 100 to UDP port 53 (what the filtered scan
	// looks for).
	recs := synthflow.Distinct(cfg.CollectorN, time.Now().Truncate(time.Second))
	msgs, err := encodeStream(recs)
	if err != nil {
		return []CollectorRun{{Name: "encode", Err: err}}, nil, ""
	}
	cfg.Logf("collectors: %d flows in %d IPFIX messages", len(recs), len(msgs))
	var runs []CollectorRun
	dirs := map[string]string{}
	for i := range cfg.Runs {
		for _, spec := range collectorSpecs(cfg.Kflow) {
			if ctx.Err() != nil {
				return runs, nil, ""
			}
			dir := filepath.Join(e.Dir, fmt.Sprintf("coll%d-%s", i, sanitize(spec.name)), "flows")
			cr := runCollector(e, spec, dir, msgs, len(recs))
			cfg.Logf("collector %s: stored %d/%d, cpu %v (user %v, sys %v), %.0f flows/s per core, %.1f bytes/flow %v", cr.Name, cr.Stored, cr.Sent,
				cr.CPU, cr.User, cr.Sys, perSecond(cr.Stored, cr.CPU), float64(cr.DiskBytes)/float64(max(cr.Stored, 1)), errString(cr.Err))
			runs = append(runs, cr)
			if prev, ok := dirs[spec.name]; ok {
				_ = os.RemoveAll(filepath.Dir(prev))
			}
			dirs[spec.name] = dir
		}
	}
	var (
		queries []QueryRun
		note    = "the query rows were not run (-queries=false)"
	)
	if !cfg.NoQueries {
		queries, note = queryBench(ctx, cfg, dirs["kflow collector"], dirs["nfcapd"])
	}
	if cfg.KeepFiles != "" {
		if err := keepFiles(cfg.KeepFiles, map[string]string{"kflow": dirs["kflow collector"], "nfcapd": dirs["nfcapd"]}); err != nil {
			cfg.Logf("keep files: %v", err)
		} else {
			cfg.Logf("the last run's flow files are in %s", cfg.KeepFiles)
		}
	}
	return runs, queries, note
}

// keepFiles moves each directory of dirs to dst/name (replacing what was
// there); a directory on another file system is copied.
func keepFiles(dst string, dirs map[string]string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	for name, dir := range dirs {
		if dir == "" {
			continue
		}
		to := filepath.Join(dst, name)
		if err := os.RemoveAll(to); err != nil {
			return err
		}
		if err := os.Rename(dir, to); err == nil {
			continue
		}
		if err := os.CopyFS(to, os.DirFS(dir)); err != nil {
			return fmt.Errorf("copy %s to %s: %w", dir, to, err)
		}
	}
	return nil
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return "error: " + err.Error()
}

func perSecond(n uint64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

func runCollector(e *Env, spec collectorSpec, dir string, msgs [][]byte, flows int) CollectorRun {
	cr := CollectorRun{Name: spec.name, Sent: flows}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		cr.Err = err
		return cr
	}
	p, addr, err := spec.start(e, dir)
	if err != nil {
		cr.Err = err
		return cr
	}
	defer p.kill()
	// About 190,000 flows a second: well below either collector's
	// single-core rate, so a collector preempted by other work for a
	// moment does not overflow its socket buffer.
	if cr.SendPeriod, err = e.replay(addr, msgs, replayRate); err != nil {
		cr.Err = err
		return cr
	}
	settle(func() TreeUsage { return readTree(p.PID()) })
	cr.PeakRSS = readTree(p.PID()).Peak
	if err := p.Stop(syscall.SIGTERM, 30*time.Second); err != nil {
		cr.Err = err
		return cr
	}
	cr.CPU = p.CPU()
	cr.User, cr.Sys = p.UserSys()
	cr.DiskBytes = dirSize(dir)
	cr.Stored, cr.Err = spec.count(dir)
	return cr
}

// queryBench times nfdump and kflow on the same flows.
func queryBench(ctx context.Context, cfg *Config, kdir, ndir string) ([]QueryRun, string) {
	if kdir == "" || ndir == "" {
		return nil, "the collector rows did not leave files to query"
	}
	note := ""
	hasQuery := exec.Command(cfg.Kflow, "file", "query", "--help").Run() == nil
	if !hasQuery {
		note = "`kflow file query` is not in this kflow binary yet: the top-10 and filtered-scan rows have no kflow figure"
	}
	const filter = "proto udp and dst port 53"
	type task struct {
		name      string
		nfdump    []string
		kflow     []string
		needQuery bool
	}
	tasks := []task{
		{"summary (nfdump -I / kflow file stat)", []string{"-R", ndir, "-I"}, []string{"file", "stat", kdir}, false},
		{"top 10 source addresses by bytes", []string{"-R", ndir, "-q", "-s", "srcip/bytes", "-n", "10"}, []string{"file", "query", "-R", kdir, "-q", "-s", "srcip/bytes", "-n", "10"}, true},
		{"filtered scan: " + filter, []string{"-R", ndir, "-q", "-o", "line", filter}, []string{"file", "query", "-R", kdir, "-q", "-o", "line", filter}, true},
		{"full dump, one line per flow", []string{"-R", ndir, "-q", "-o", "line"}, []string{"file", "dump", kdir}, false},
	}
	// kflow-query, the query-only binary next to kflow, asks the same
	// questions (the one a script calling nfdump would switch to).
	qbin := filepath.Join(filepath.Dir(cfg.Kflow), "kflow-query")
	if exec.Command(qbin, "--help").Run() == nil {
		tasks = []task{
			{"summary (nfdump -I / kflow-query -I)", []string{"-R", ndir, "-I"}, []string{"-R", kdir, "-I"}, false},
			{"top 10 source addresses by bytes", tasks[1].nfdump, []string{"-R", kdir, "-q", "-s", "srcip/bytes", "-n", "10"}, false},
			{"filtered scan: " + filter, tasks[2].nfdump, []string{"-R", kdir, "-q", "-o", "line", filter}, false},
			{"full dump, one line per flow", tasks[3].nfdump, []string{"-R", kdir, "-q", "-o", "line"}, false},
		}
	} else {
		qbin = cfg.Kflow
	}
	var out []QueryRun
	for range cfg.Runs {
		for _, t := range tasks {
			if ctx.Err() != nil {
				return out, note
			}
			out = append(out, timeCmd(t.name, "nfdump", "nfdump", t.nfdump))
			if t.needQuery && !hasQuery {
				out = append(out, QueryRun{Task: t.name, Tool: "kflow", Err: errNotYet})
				continue
			}
			out = append(out, timeCmd(t.name, "kflow", qbin, t.kflow))
		}
	}
	for _, q := range out {
		if q.Err != nil && q.Err != errNotYet {
			cfg.Logf("query %s %s: %v", q.Tool, q.Task, q.Err)
		}
	}
	return out, note
}

var errNotYet = fmt.Errorf("not yet")

// timeCmd runs a command, discarding its output but counting its lines,
// and returns its wall and CPU time.
func timeCmd(task, tool, bin string, args []string) QueryRun {
	q := QueryRun{Task: task, Tool: tool, Command: filepath.Base(bin) + " " + strings.Join(args, " ")}
	cmd := exec.Command(bin, args...)
	lc := &lineCounter{}
	cmd.Stdout = lc
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	q.Wall = time.Since(start)
	if cmd.ProcessState != nil {
		q.CPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	q.Lines = lc.n
	if err != nil {
		q.Err = fmt.Errorf("%w: %s", err, lastLines(stderr.String(), 3))
	}
	return q
}

type lineCounter struct{ n int }

func (l *lineCounter) Write(p []byte) (int, error) {
	for _, c := range p {
		if c == '\n' {
			l.n++
		}
	}
	return len(p), nil
}

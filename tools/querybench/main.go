// SPDX-License-Identifier: Apache-2.0

// Command querybench measures "kflow file query" and kflow-query side by
// side with nfdump on the same synthetic flows: it writes N flows into a
// kflow flow file with the flowfile writer and sends the same flows as
// IPFIX over UDP on loopback to an nfcapd it starts (and stops, by PID),
// then times the same questions asked of each, the runs of the tools
// interleaved, and prints the median and range of wall and CPU time, flows
// scanned per CPU second (per core) and the ratio to nfdump's uncompressed
// files.
//
//	go run ./tools/querybench -n 1000000 -dir /tmp/querybench -runs 5
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kflow-dev/kflow/collector/flowfile"
	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/exporter/ipfix"
	"github.com/kflow-dev/kflow/tools/synthflow"
)

func main() {
	n := flag.Int("n", 1_000_000, "synthetic flows")
	dir := flag.String("dir", filepath.Join(os.TempDir(), "kflow-querybench"), "working directory (data is reused when present)")
	runs := flag.Int("runs", 5, "timed runs per command, interleaved across the tools (the median and the range are reported)")
	kflowBin := flag.String("kflow", "", "kflow binary (default: go build ./cmd/kflow into -dir)")
	queryBin := flag.String("kflow-query", "", "kflow-query binary (default: kflow-query next to -kflow, else go build ./cmd/kflow-query into -dir)")
	port := flag.Int("port", 20955, "loopback UDP port for nfcapd")
	genOnly := flag.Bool("gen", false, "only generate the data")
	flag.Parse()
	if err := run(*n, *dir, *runs, *kflowBin, *queryBin, *port, *genOnly); err != nil {
		fmt.Fprintln(os.Stderr, "querybench:", err)
		os.Exit(1)
	}
}

func run(n int, dir string, runs int, kflowBin, queryBin string, port int, genOnly bool) error {
	kdir := filepath.Join(dir, fmt.Sprintf("kflow-%d", n))
	ndir := filepath.Join(dir, fmt.Sprintf("nfcapd-%d", n))
	ldir := filepath.Join(dir, fmt.Sprintf("nfcapd-lz4-%d", n))
	if _, err := os.Stat(filepath.Join(dir, fmt.Sprintf("done-%d", n))); err != nil {
		if err := generate(n, kdir, ndir, port); err != nil {
			return err
		}
		// The same nfcapd file, LZ4-compressed (nfcapd -y).
		if err := os.MkdirAll(ldir, 0o755); err != nil {
			return err
		}
		if out, err := exec.Command("nfdump", "-R", ndir, "-y", "-w", filepath.Join(ldir, "nfcapd.lz4")).CombinedOutput(); err != nil {
			return fmt.Errorf("nfdump -y -w: %w: %s", err, out)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("done-%d", n)), nil, 0o644); err != nil {
			return err
		}
	}
	if genOnly {
		fmt.Println(kdir)
		fmt.Println(ndir)
		return nil
	}
	if queryBin == "" && kflowBin != "" {
		if q := filepath.Join(filepath.Dir(kflowBin), "kflow-query"); fileExists(q) {
			queryBin = q
		}
	}
	for _, b := range []struct {
		bin *string
		cmd string
	}{{&kflowBin, "kflow"}, {&queryBin, "kflow-query"}} {
		if *b.bin != "" {
			continue
		}
		*b.bin = filepath.Join(dir, b.cmd)
		out, err := exec.Command("go", "build", "-o", *b.bin, "github.com/kflow-dev/kflow/cmd/"+b.cmd).CombinedOutput()
		if err != nil {
			return fmt.Errorf("go build %s: %w: %s", b.cmd, err, out)
		}
	}
	// The questions: options as both tools take them, and a filter.
	questions := []struct {
		name   string
		args   []string
		filter string
	}{
		{"-s srcip/bytes 'proto tcp'", []string{"-q", "-s", "srcip/bytes"}, "proto tcp"},
		{"-s srcip/bytes 'proto udp and dst port 53'", []string{"-q", "-s", "srcip/bytes"}, "proto udp and dst port 53"},
		{"-s srcip/bytes (no filter)", []string{"-q", "-s", "srcip/bytes"}, ""},
		{"-I (no filter)", []string{"-I"}, ""},
		{"-s dstport/bytes 'net 198.19.0.0/16 and bytes > 10k'", []string{"-q", "-s", "dstport/bytes"}, "net 198.19.0.0/16 and bytes > 10k"},
		{"-s srcip/bytes -s dstip/bytes -s proto/bytes", []string{"-q", "-s", "srcip/bytes", "-s", "dstip/bytes", "-s", "proto/bytes"}, ""},
		{"-B -o extended", []string{"-q", "-B", "-o", "extended"}, ""},
	}
	fmt.Printf("querybench -n %d -runs %d, %s; %d CPUs; load average at start %s\n", n, runs,
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), runtime.NumCPU(), loadAvg())
	fmt.Println("runs interleaved (nfdump, nfdump-lz4, kflow file query, kflow-query, again); median and min-max; flows/s per core from the median CPU time")
	for _, d := range []string{kdir, ndir, ldir} {
		fmt.Printf("%-40s %6.1f MB\n", filepath.Base(d), float64(dirSize(d))/1e6)
	}
	fmt.Println()
	fmt.Printf("%-52s %-11s %-19s %-19s %12s %9s %8s\n", "question", "tool", "wall ms", "cpu ms", "flows/s/core", "vs nfdump", "lines")
	for _, q := range questions {
		var filter []string
		if q.filter != "" {
			filter = []string{q.filter}
		}
		tools := []struct {
			name string
			bin  string
			args []string
		}{
			{"nfdump", "nfdump", slices.Concat([]string{"-R", ndir}, q.args, filter)},
			{"nfdump-lz4", "nfdump", slices.Concat([]string{"-R", ldir}, q.args, filter)},
			{"kflow", kflowBin, slices.Concat([]string{"file", "query"}, q.args, []string{kdir}, filter)},
			{"kflow-query", queryBin, slices.Concat(q.args, []string{kdir}, filter)},
		}
		walls := make([][]time.Duration, len(tools))
		cpus := make([][]time.Duration, len(tools))
		lines := make([]int, len(tools))
		for range runs {
			for i, t := range tools {
				w, c, l, err := timeRun(t.bin, t.args...)
				if err != nil {
					return err
				}
				walls[i], cpus[i], lines[i] = append(walls[i], w), append(cpus[i], c), l
			}
		}
		base := median(cpus[0])
		for i, t := range tools {
			cpu := median(cpus[i])
			fmt.Printf("%-52s %-11s %-19s %-19s %12.0f %8.2fx %8d\n", q.name, t.name, spread(walls[i]), spread(cpus[i]),
				float64(n)/max(cpu.Seconds(), 1e-6), base.Seconds()/max(cpu.Seconds(), 1e-6), lines[i])
		}
	}
	fmt.Printf("\nload average at end %s\n", loadAvg())
	return nil
}

// timeRun runs bin once and returns its wall and CPU (user+system) times
// and the lines it printed.
func timeRun(bin string, args ...string) (wall, cpu time.Duration, lines int, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var lc lineCounter
	cmd.Stdout = &lc
	t0 := time.Now()
	if err := cmd.Run(); err != nil {
		return 0, 0, 0, fmt.Errorf("%s %s: %w", bin, strings.Join(args, " "), err)
	}
	return time.Since(t0), cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), lc.n, nil
}

type lineCounter struct{ n int }

func (c *lineCounter) Write(p []byte) (int, error) {
	for _, b := range p {
		if b == '\n' {
			c.n++
		}
	}
	return len(p), nil
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// spread prints the median and the range in milliseconds.
func spread(ds []time.Duration) string {
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return fmt.Sprintf("%.0f (%.0f-%.0f)", ms(median(ds)), ms(slices.Min(ds)), ms(slices.Max(ds)))
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// generate writes n synthetic flows into kdir (a kflow file) and ndir (via
// nfcapd).
func generate(n int, kdir, ndir string, port int) error {
	start := time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)
	recs := synthflow.NewMix(synthflow.Options{Seed: 1, Start: start, Simple: true}).Records(n)
	for _, d := range []string{kdir, ndir} {
		if err := os.RemoveAll(d); err != nil {
			return err
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	w, err := flowfile.Create(filepath.Join(kdir, flowfile.FileName(flowfile.DefaultPrefix, flowfile.SlotStart(start, flowfile.DefaultInterval), flowfile.DefaultInterval)),
		flowfile.WriterOptions{Ident: "querybench"})
	if err != nil {
		return err
	}
	exp := netipExporter()
	for i := range recs {
		r := recs[i]
		r.Exporter = exp
		if err := w.Append(&r); err != nil {
			return err
		}
	}
	if err := w.Close(); err != nil {
		return err
	}
	return feedNfcapd(recs, ndir, port)
}

// feedNfcapd starts nfcapd on 127.0.0.1:port writing into dir, sends recs
// to it as IPFIX, stops it and checks that it stored every flow.
func feedNfcapd(recs []flow.Record, dir string, port int) error {
	cmd := exec.Command("nfcapd", "-b", "127.0.0.1", "-p", strconv.Itoa(port), "-w", dir, "-B", "33554432", "-t", "3600")
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start nfcapd: %w", err)
	}
	pid := cmd.Process.Pid
	defer func() {
		if cmd.ProcessState == nil {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			_ = cmd.Wait()
		}
	}()
	time.Sleep(500 * time.Millisecond)
	conn, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := sendIPFIX(conn, recs); err != nil {
		return err
	}
	time.Sleep(500 * time.Millisecond)
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		return fmt.Errorf("nfcapd did not stop within 30s: %s", out)
	}
	got, err := nfdumpFlows(dir)
	if err != nil {
		return err
	}
	if got != len(recs) {
		return fmt.Errorf("nfcapd stored %d flows of %d (UDP loss: run again)", got, len(recs))
	}
	return nil
}

// sendIPFIX encodes recs as IPFIX and sends them, paced so that nfcapd
// keeps up.
func sendIPFIX(conn net.Conn, recs []flow.Record) error {
	enc, err := ipfix.NewEncoder(ipfix.Config{MTU: 8192})
	if err != nil {
		return err
	}
	msgs := 0
	for len(recs) > 0 {
		k := min(len(recs), 1000)
		if _, err := enc.Encode(recs[:k], func(p ipfix.Packet) error {
			msgs++
			if msgs%64 == 0 {
				time.Sleep(2 * time.Millisecond)
			}
			_, err := conn.Write(p.Bytes)
			return err
		}); err != nil {
			return err
		}
		recs = recs[k:]
	}
	return nil
}

var flowsLine = regexp.MustCompile(`(?m)^Flows:\s*(\d+)`)

func nfdumpFlows(dir string) (int, error) {
	var files []string
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	sort.Strings(files)
	if len(files) == 0 {
		return 0, errors.New("nfcapd wrote no file")
	}
	out, err := exec.Command("nfdump", "-R", dir, "-I").CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("nfdump -I: %w: %s", err, out)
	}
	m := flowsLine.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("nfdump -I: no Flows line: %s", out)
	}
	return strconv.Atoi(string(m[1]))
}

func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

func netipExporter() netip.Addr { return netip.MustParseAddr("127.0.0.1") }

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

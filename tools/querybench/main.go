// SPDX-License-Identifier: Apache-2.0

// Command querybench measures "kflow file query" side by side with nfdump
// on the same synthetic flows: it writes N flows into a kflow flow file
// with the flowfile writer and sends the same flows as IPFIX over UDP on
// loopback to an nfcapd it starts (and stops, by PID), then times the same
// questions asked of both and prints flows scanned per second of wall time
// and per CPU second (per core).
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
	runs := flag.Int("runs", 5, "timed runs per command (the best is reported)")
	kflowBin := flag.String("kflow", "", "kflow binary (default: go build ./cmd/kflow into -dir)")
	port := flag.Int("port", 20955, "loopback UDP port for nfcapd")
	genOnly := flag.Bool("gen", false, "only generate the data")
	flag.Parse()
	if err := run(*n, *dir, *runs, *kflowBin, *port, *genOnly); err != nil {
		fmt.Fprintln(os.Stderr, "querybench:", err)
		os.Exit(1)
	}
}

func run(n int, dir string, runs int, kflowBin string, port int, genOnly bool) error {
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
	if kflowBin == "" {
		kflowBin = filepath.Join(dir, "kflow")
		out, err := exec.Command("go", "build", "-o", kflowBin, "github.com/kflow-dev/kflow/cmd/kflow").CombinedOutput()
		if err != nil {
			return fmt.Errorf("go build: %w: %s", err, out)
		}
	}
	questions := []struct{ name, filter string }{
		{"-s srcip/bytes 'proto tcp'", "proto tcp"},
		{"-s srcip/bytes 'proto udp and dst port 53'", "proto udp and dst port 53"},
		{"-s srcip/bytes (no filter)", ""},
		{"-I (no filter)", "-I"},
		{"-s dstport/bytes 'net 198.19.0.0/16 and bytes > 10k'", "net 198.19.0.0/16 and bytes > 10k"},
	}
	fmt.Printf("flows: %d; runs: %d (best of each); %d CPUs\n", n, runs, runtime.NumCPU())
	for _, d := range []string{kdir, ndir, ldir} {
		fmt.Printf("%-40s %6.1f MB\n", filepath.Base(d), float64(dirSize(d))/1e6)
	}
	fmt.Println()
	fmt.Printf("%-56s %-10s %9s %9s %14s %14s\n", "question", "tool", "wall", "cpu", "flows/s wall", "flows/s/core")
	for _, q := range questions {
		var nfArgs, lzArgs, kArgs []string
		switch q.filter {
		case "-I":
			nfArgs = []string{"-R", ndir, "-I"}
			kArgs = []string{"file", "query", "-I", kdir}
		default:
			stat := "srcip/bytes"
			if strings.Contains(q.name, "dstport") {
				stat = "dstport/bytes"
			}
			nfArgs = []string{"-R", ndir, "-q", "-s", stat}
			kArgs = []string{"file", "query", "-q", "-s", stat, kdir}
			if q.filter != "" {
				nfArgs = append(nfArgs, q.filter)
				kArgs = append(kArgs, q.filter)
			}
		}
		lzArgs = append([]string{"-R", ldir}, nfArgs[2:]...)
		for _, tool := range []struct {
			name string
			bin  string
			args []string
		}{{"nfdump", "nfdump", nfArgs}, {"nfdump-lz4", "nfdump", lzArgs}, {"kflow", kflowBin, kArgs}} {
			wall, cpu, err := timeRuns(runs, tool.bin, tool.args...)
			if err != nil {
				return err
			}
			fmt.Printf("%-56s %-10s %8.3fs %8.3fs %14.0f %14.0f\n", q.name, tool.name, wall.Seconds(), cpu.Seconds(),
				float64(n)/wall.Seconds(), float64(n)/cpu.Seconds())
		}
	}
	return nil
}

// timeRuns runs bin runs times and returns the best wall and CPU
// (user+system) times.
func timeRuns(runs int, bin string, args ...string) (wall, cpu time.Duration, err error) {
	for i := range runs {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Stdout, cmd.Stderr = nil, nil
		t0 := time.Now()
		err := cmd.Run()
		w := time.Since(t0)
		cancel()
		if err != nil {
			return 0, 0, fmt.Errorf("%s %s: %w", bin, strings.Join(args, " "), err)
		}
		c := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		if i == 0 || w < wall {
			wall = w
		}
		if i == 0 || c < cpu {
			cpu = c
		}
	}
	return wall, cpu, nil
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

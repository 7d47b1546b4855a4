// SPDX-License-Identifier: Apache-2.0

// Command demo runs kflow end to end inside two throwaway network
// namespaces: the exporter on one end of a veth pair writes flow files
// through its embedded collector while generated traffic crosses the pair,
// then the recorded flows are printed next to the traffic's ground truth
// and checked against it: every flow between the pair's addresses (UDP,
// ICMP and TCP), its packets and bytes exactly. The ground truth is a
// packet capture on the far end of the pair, which must itself agree with
// what the UDP and ICMP generators know they sent. It never touches the
// host's own interfaces. Run it as root: make demo.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/tools/testenv"
)

func main() {
	kflow := flag.String("kflow", "bin/kflow", "path of the kflow binary")
	keep := flag.Bool("keep", false, "keep the flow files (their directory is printed)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *kflow, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, kflow string, keep bool) error {
	bin, err := filepath.Abs(kflow)
	if err != nil {
		return err
	}
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("kflow binary: %w (run make build)", err)
	}
	p, cleanup, err := testenv.NewPairE("demo")
	if err != nil {
		return fmt.Errorf("create namespaces (run as root): %w", err)
	}
	defer cleanup()
	dir, err := os.MkdirTemp("", "kflow-demo-")
	if err != nil {
		return err
	}
	if !keep {
		defer os.RemoveAll(dir)
	}
	ready := filepath.Join(dir, "ready")
	flows := filepath.Join(dir, "flows")

	fmt.Printf("== namespaces %s and %s joined by %s <-> %s\n", p.A.Name, p.B.Name, p.AIf, p.BIf)
	fmt.Printf("== kflow exporter run -i %s (embedded collector writing to %s)\n", p.AIf, flows)
	exp := exec.Command("ip", "netns", "exec", p.A.Name, bin, "exporter", "run", "-i", p.AIf,
		"--pin-dir", "", "--dir", flows, "--rotate", "60s", "--ready-file", ready, "--log-level", "warn")
	exp.Stdout, exp.Stderr = os.Stdout, os.Stderr
	if err := exp.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- exp.Wait() }()
	stopExporter := func() error {
		_ = exp.Process.Signal(os.Interrupt)
		select {
		case err := <-exited:
			return err
		case <-time.After(testenv.Patience):
			_ = exp.Process.Kill()
			<-exited
			return fmt.Errorf("exporter did not stop within %v", testenv.Patience)
		}
	}
	if err := waitReady(ctx, ready, exited); err != nil {
		_ = stopExporter()
		return err
	}

	fmt.Println("== traffic: UDP echoes, pings, TCP sessions over IPv4 and IPv6, captured on " + p.BIf)
	// The capture counts every packet on B's end of the pair: the ground
	// truth of every flow, TCP included (whose packets the kernel decides).
	capture, err := testenv.StartCapture(p.B, p.BIndex, true)
	if err != nil {
		_ = stopExporter()
		return err
	}
	known := testenv.Truth{} // what the UDP and ICMP generators sent
	add := func(t testenv.Truth, err error) error {
		for k, c := range t {
			known[k] = c
		}
		return err
	}
	steps := []func() error{
		func() error { return add(p.UDPEcho(false, 40001, 53, []int{20, 60, 512})) },
		func() error { return add(p.UDPEcho(true, 40002, 53, []int{20, 60, 512})) },
		func() error { return add(p.Ping(false, 3, 56)) },
		func() error { return add(p.Ping(true, 3, 56)) },
		func() error { _, err := p.TCPSession(false, 443, []int{300, 20000}); return err },
		func() error { _, err := p.TCPSession(true, 443, []int{300, 20000}); return err },
	}
	for _, s := range steps {
		if ctx.Err() != nil {
			break
		}
		if err := s(); err != nil {
			_, _ = capture.Stop()
			_ = stopExporter()
			return err
		}
	}
	captured, err := capture.Stop()
	if err != nil {
		_ = stopExporter()
		return err
	}
	fmt.Println("== stopping the exporter: it drains the kernel one last time and writes every flow")
	if err := stopExporter(); err != nil {
		return fmt.Errorf("exporter: %w", err)
	}
	truth := p.OwnFlows(captured)
	for k, c := range known {
		if truth[k] != c {
			return fmt.Errorf("the capture disagrees with the generator on %v: captured %+v, sent %+v", k, truth[k], c)
		}
	}

	fmt.Println("\n== ground truth: every flow between the pair's addresses, captured on " + p.BIf + " (directions as seen on " + p.AIf + ")")
	var lines []string
	for k, c := range truth {
		lines = append(lines, fmt.Sprintf("  %-70s %4d packets %7d bytes", k, c.Packets, c.Octets))
	}
	sort.Strings(lines)
	for _, l := range lines {
		fmt.Println(l)
	}
	for _, args := range [][]string{{"file", "stat", flows}, {"file", "dump", flows}} {
		fmt.Printf("\n== kflow %s %s\n", args[0], args[1])
		cmd := exec.Command(bin, args...)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("kflow %s %s: %w", args[0], args[1], err)
		}
	}
	if err := checkTruth(bin, flows, p, truth); err != nil {
		return err
	}
	if keep {
		fmt.Println("\nflow files kept in", flows)
	}
	return nil
}

// checkTruth reads the records back as JSON and compares every flow
// between the pair's addresses with the ground truth: the same flows
// (UDP, ICMP and TCP, each direction), the same packets and bytes.
func checkTruth(bin, flows string, p *testenv.Pair, truth testenv.Truth) error {
	out, err := exec.Command(bin, "file", "dump", "-j", flows).Output()
	if err != nil {
		return fmt.Errorf("kflow file dump -j: %w", err)
	}
	got := testenv.Truth{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var j flow.JSON
		if err := dec.Decode(&j); err != nil {
			return fmt.Errorf("kflow file dump -j: %w", err)
		}
		r, err := j.Record()
		if err != nil {
			return fmt.Errorf("kflow file dump -j: %w", err)
		}
		k := testenv.FlowKey{Src: r.Src, Dst: r.Dst, Proto: r.Proto, SrcPort: r.SrcPort, DstPort: r.DstPort,
			ICMPType: r.ICMPType, ICMPCode: r.ICMPCode, Dir: r.Direction}
		c := got[k]
		c.Packets += r.Packets
		c.Octets += r.Octets
		got[k] = c
	}
	got = p.OwnFlows(got)
	exact, protos := 0, map[uint8]int{}
	for k, w := range truth {
		protos[k.Proto]++
		if g := got[k]; g.Packets == w.Packets && g.Octets == w.Octets {
			exact++
		} else {
			fmt.Printf("  MISMATCH %v: recorded %d packets %d bytes, sent %d packets %d bytes\n", k, g.Packets, g.Octets, w.Packets, w.Octets)
		}
	}
	extra := 0
	for k, g := range got {
		if _, ok := truth[k]; !ok {
			extra++
			fmt.Printf("  NOT SENT %v: recorded %d packets %d bytes\n", k, g.Packets, g.Octets)
		}
	}
	tcp, udp, icmp := protos[flow.ProtoTCP], protos[flow.ProtoUDP], protos[flow.ProtoICMP]+protos[flow.ProtoICMPv6]
	fmt.Printf("\n== ground truth check: %d of %d flows (%d TCP, %d UDP, %d ICMP) recorded exactly (packets and bytes), %d recorded flows not sent\n",
		exact, len(truth), tcp, udp, icmp, extra)
	if tcp == 0 || udp == 0 || icmp == 0 || tcp+udp+icmp != len(truth) {
		return fmt.Errorf("the ground truth holds %d TCP, %d UDP and %d ICMP flows of %d: not the traffic the demo sends", tcp, udp, icmp, len(truth))
	}
	if exact != len(truth) || extra != 0 {
		return errors.New("recorded flows differ from the traffic sent")
	}
	return nil
}

func waitReady(ctx context.Context, path string, exited <-chan error) error {
	deadline := time.After(testenv.Patience)
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-exited:
			return fmt.Errorf("exporter exited before it was ready: %v", err)
		case <-deadline:
			return fmt.Errorf("exporter not ready within %v", testenv.Patience)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/bpf"
	"github.com/kflow-dev/kflow/exporter/agent"
	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/tools/testenv"
)

type nopSink struct{}

func (nopSink) Write([]flow.Record) error { return nil }
func (nopSink) Close() error              { return nil }

func pairTruth(t *testing.T, p *testenv.Pair) testenv.Truth {
	t.Helper()
	truth := testenv.Truth{}
	for _, f := range []func() (testenv.Truth, error){
		func() (testenv.Truth, error) { return p.UDPEcho(false, 42000, 7100, []int{1, 300, 1200}) },
		func() (testenv.Truth, error) { return p.Ping(false, 3, 64) },
	} {
		tr, err := f()
		if err != nil {
			t.Fatal(err)
		}
		for k, c := range tr {
			truth[k] = c
		}
	}
	return truth
}

func recordsTruth(t *testing.T, p *testenv.Pair, js []flow.JSON) testenv.Truth {
	t.Helper()
	recs := make([]flow.Record, len(js))
	for i := range js {
		var err error
		if recs[i], err = js[i].Record(); err != nil {
			t.Fatal(err)
		}
	}
	return oursRecords(p, recs)
}

// flowDiffs lists how got differs from want in flows, packets and octets.
func flowDiffs(got, want testenv.Truth) []string {
	var diffs []string
	if len(got) != len(want) {
		diffs = append(diffs, fmt.Sprintf("%d flows, want %d: %v", len(got), len(want), got))
	}
	for k, w := range want {
		if g := got[k]; g.Packets != w.Packets || g.Octets != w.Octets {
			diffs = append(diffs, fmt.Sprintf("%v: got %+v, want %+v", k, g, w))
		}
	}
	return diffs
}

func sameFlows(t *testing.T, what string, got, want testenv.Truth) {
	t.Helper()
	for _, d := range flowDiffs(got, want) {
		t.Errorf("%s: %s", what, d)
	}
}

// TestFlowListExporter runs an exporter in-process with its /flows
// endpoint, generates known traffic and lists the live flows.
func TestFlowListExporter(t *testing.T) {
	testenv.RequirePrivileged(t)
	p := testenv.NewPair(t)
	if err := p.DisableIPv6(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var a *agent.Agent
	if err := p.A.Do(func() (err error) {
		a, err = agent.New(ctx, agent.Config{Interfaces: []string{p.AIf}, Sink: nopSink{}, DrainInterval: 50 * time.Millisecond})
		return err
	}); err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.A.Do(func() error { return a.Run(ctx) }) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(agent.FlowsPath, a.FlowsHandler())
	mux.Handle(agent.InterfacesPath, a.InterfacesHandler())
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	defer srv.Close()
	addr := ln.Addr().String()

	// Wait until the agent attached: its first drains have happened.
	if !testenv.WaitFor(testenv.Patience, func() bool { return len(a.Interfaces()) > 0 }) {
		t.Fatalf("the agent did not attach within %v", testenv.Patience)
	}
	truth := pairTruth(t, p)
	// Until a drain saw everything (Patience bounds a hang, not the wait).
	var got testenv.Truth
	testenv.WaitFor(testenv.Patience, func() bool {
		code, out, stderr := runCLI(t, "flow", "list", "--exporter", addr, "-j")
		if code != 0 {
			t.Fatalf("flow list: exit %d: %s", code, stderr)
		}
		var js []flow.JSON
		if err := json.Unmarshal([]byte(out), &js); err != nil {
			t.Fatalf("flow list -j: %v\n%s", err, out)
		}
		got = recordsTruth(t, p, js)
		return len(flowDiffs(got, truth)) == 0
	})
	sameFlows(t, "flow list", got, truth)

	code, out, stderr := runCLI(t, "flow", "top", "--exporter", addr, "--iterations", "2", "-d", "100ms", "-j")
	if code != 0 {
		t.Fatalf("flow top: exit %d: %s", code, stderr)
	}
	dec := json.NewDecoder(stringsReader(out))
	n := 0
	for dec.More() {
		var tj topJSON
		if err := dec.Decode(&tj); err != nil {
			t.Fatalf("flow top -j: %v", err)
		}
		n++
	}
	if n != 2 {
		t.Errorf("flow top --iterations 2 printed %d snapshots", n)
	}
	// Plain output names the interfaces (JSON keeps their numbers).
	code, out, _ = runCLI(t, "flow", "top", "--exporter", addr, "--iterations", "1")
	if code != 0 || !containsAll(out, "kflow flow top", "UDP", "ICMP", p.AIf+" ingress", p.AIf+" egress") {
		t.Errorf("flow top plain output (exit %d):\n%s", code, out)
	}
	code, out, _ = runCLI(t, "flow", "list", "--exporter", addr)
	if code != 0 || !containsAll(out, "Input", "Output", " "+p.AIf+" ") {
		t.Errorf("flow list plain output (exit %d):\n%s", code, out)
	}
}

// TestFlowListKernel reads the pinned kernel map of a datapath that was
// not drained: exactly the traffic sent.
func TestFlowListKernel(t *testing.T) {
	f := newDatapath(t, bpf.HookAuto)
	truth := pairTruth(t, f.p)
	code, out, stderr := f.run(t, false, "flow", "list", "--kernel", "--pin-dir", f.pin, "-j")
	if code != 0 {
		t.Fatalf("flow list --kernel: exit %d: %s", code, stderr)
	}
	var js []flow.JSON
	if err := json.Unmarshal([]byte(out), &js); err != nil {
		t.Fatal(err)
	}
	sameFlows(t, "flow list --kernel", recordsTruth(t, f.p, js), truth)
	// Names from the namespace kflow runs in.
	code, out, _ = f.run(t, true, "flow", "list", "--kernel", "--pin-dir", f.pin)
	if code != 0 || !strings.Contains(out, " "+f.p.AIf+" ") {
		t.Errorf("flow list --kernel plain output (exit %d):\n%s", code, out)
	}
	// Reading disturbed nothing: a drain still returns everything.
	recs, _, err := f.d.Drain(nil)
	if err != nil {
		t.Fatal(err)
	}
	sameFlows(t, "drain after flow list", oursRecords(f.p, recs), truth)
}

func TestFlowListNoExporter(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	code, _, stderr := runCLI(t, "flow", "list", "--exporter", addr)
	if code != 1 || !containsAll(stderr, "no exporter answers", "--metrics-address") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

func stringsReader(s string) *strings.Reader { return strings.NewReader(s) }

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

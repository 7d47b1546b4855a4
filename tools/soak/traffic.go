// SPDX-License-Identifier: Apache-2.0

package main

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kflow-dev/kflow/tools/testenv"
)

// Traffic runs the seeded mix on every pair until a deadline and keeps
// the ground truth of what crossed the observed interfaces, per flow.
//
//   - pairs[0] carries request/response traffic (UDP echoes, pings, TCP
//     sessions SYN..FIN, IPv4 and IPv6) under a capture on its far end:
//     TCP's packet counts depend on the kernel, so the capture is its
//     truth (and must agree with the generators' for UDP and ICMP);
//   - the other pairs carry UDP blasts (few flows, many packets) and churn
//     (many flows of one or two packets), IPv4 and IPv6, one of them also
//     over VLAN sub-interfaces: truth by construction (each datagram
//     whose send succeeded).
//
// Every flow of a window has a key no other window uses (destination
// ports, ICMP codes), so a record tells which window its packets were
// sent in.
type Traffic struct {
	env *Env
	rng *rand.Rand
	// port is the next destination port for a blast: each call gets its
	// own, so keys never repeat across windows.
	port uint16
	// paused pairs send nothing (an interface being re-created).
	mu     sync.Mutex
	paused map[int]bool
	burst  bool // the next blast round sends a map-filling burst
	// busy[i] is held while pair i's generator sends, so a pause can wait
	// for the call in progress.
	busy []sync.Mutex
}

// Batch is what one window's traffic sent.
type Batch struct {
	Truth testenv.Truth
	Calls int
	Err   error
}

func newTraffic(e *Env, seed uint64) *Traffic {
	return &Traffic{env: e, rng: rand.New(rand.NewPCG(seed, seed^0x50a4)), port: 10000, paused: map[int]bool{},
		busy: make([]sync.Mutex, len(e.pairs))}
}

// pause stops (or resumes) pair's traffic; stopping waits for the call in
// progress to end.
func (t *Traffic) pause(pair int, on bool) {
	t.mu.Lock()
	t.paused[pair] = on
	t.mu.Unlock()
	if on {
		t.busy[pair].Lock()
		t.busy[pair].Unlock() //nolint:staticcheck // waits for the sender
	}
}

func (t *Traffic) isPaused(pair int) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.paused[pair]
}

// nextPorts reserves n destination ports.
func (t *Traffic) nextPorts(n int) uint16 {
	t.mu.Lock()
	defer t.mu.Unlock()
	if int(t.port)+n > 65000 {
		t.port = 10000 // a run of this length would need more: keys may repeat after 55,000 calls
	}
	p := t.port
	t.port += uint16(n)
	return p
}

// run sends window w's traffic until deadline (a hang guard bounds each
// call too) and returns its truth.
func (t *Traffic) run(w int, deadline time.Time) Batch {
	var wg sync.WaitGroup
	results := make([]Batch, len(t.env.pairs))
	seeds := make([]uint64, len(t.env.pairs))
	for i := range seeds {
		seeds[i] = t.rng.Uint64()
	}
	for i := range t.env.pairs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seeds[i], uint64(w)))
			if i == 0 {
				results[i] = t.requestResponse(w, rng, deadline)
			} else {
				results[i] = t.blasts(i, rng, deadline)
			}
		}(i)
	}
	wg.Wait()
	out := Batch{Truth: testenv.Truth{}}
	for _, r := range results {
		for k, c := range r.Truth {
			out.Truth[k] = addCounts(out.Truth[k], c)
		}
		out.Calls += r.Calls
		if r.Err != nil && out.Err == nil {
			out.Err = r.Err
		}
	}
	return out
}

func addCounts(a, b testenv.Counts) testenv.Counts {
	return testenv.Counts{Packets: a.Packets + b.Packets, Octets: a.Octets + b.Octets, TCPFlags: a.TCPFlags | b.TCPFlags}
}

// requestResponse runs echoes, pings and TCP sessions on pairs[0] under a
// capture of its far end.
func (t *Traffic) requestResponse(w int, rng *rand.Rand, deadline time.Time) Batch {
	p := t.env.pairs[0]
	b := Batch{Truth: testenv.Truth{}}
	capt, err := testenv.StartCapture(p.B, p.BIndex, true)
	if err != nil {
		b.Err = err
		return b
	}
	gen := testenv.Truth{} // UDP and ICMP, from the generators
	code := uint8(w)
	for time.Now().Before(deadline) && b.Err == nil {
		v6 := rng.IntN(2) == 1
		var tr testenv.Truth
		switch rng.IntN(3) {
		case 0:
			port := t.nextPorts(1)
			sizes := []int{20 + rng.IntN(100), 200 + rng.IntN(1000), 1 + rng.IntN(1400)}
			tr, err = p.UDPEcho(v6, 30000+uint16(rng.IntN(20000)), port, sizes)
		case 1:
			tr, err = p.PingCode(v6, 1+rng.IntN(4), 8+rng.IntN(1000), code)
		case 2:
			_, err = p.TCPSession(v6, t.nextPorts(1), []int{1 + rng.IntN(2000), 1 + rng.IntN(30000)})
		}
		if err != nil {
			b.Err = fmt.Errorf("pair 0: %w", err)
		}
		for k, c := range tr {
			gen[k] = addCounts(gen[k], c)
		}
		b.Calls++
	}
	seen, err := capt.Stop()
	if err != nil {
		if b.Err == nil {
			b.Err = err
		}
		return b
	}
	// The capture sees every frame; the generators' truth must agree
	// with it for what they know.
	for k, c := range gen {
		if s := seen[k]; s.Packets != c.Packets || s.Octets != c.Octets {
			if b.Err == nil {
				b.Err = fmt.Errorf("pair 0: capture and generator disagree on %v: %d/%d packets", k, s.Packets, c.Packets)
			}
		}
	}
	// What the kernel sent on its own (router solicitations, multicast
	// listener reports on link-local addresses) is not the harness's.
	for k, c := range seen {
		if ours(p, k.Src) && ours(p, k.Dst) {
			b.Truth[k] = c
		}
	}
	return b
}

// ours reports whether a is one of the pair's own addresses.
func ours(p *testenv.Pair, a netip.Addr) bool {
	return a == p.A4 || a == p.B4 || a == p.A6 || a == p.B6
}

// blasts sends UDP blasts and churn on pairs[i] (and its VLAN) until the
// deadline.
func (t *Traffic) blasts(i int, rng *rand.Rand, deadline time.Time) Batch {
	b := Batch{Truth: testenv.Truth{}}
	for time.Now().Before(deadline) && b.Err == nil {
		t.busy[i].Lock()
		if t.isPaused(i) {
			t.busy[i].Unlock()
			time.Sleep(20 * time.Millisecond)
			continue
		}
		t.blast(i, rng, &b)
		t.busy[i].Unlock()
	}
	return b
}

// blast sends one blast or churn call on pairs[i].
func (t *Traffic) blast(i int, rng *rand.Rand, b *Batch) {
	{
		p := t.env.pairs[i]
		vlan := i == vlanPair && rng.IntN(3) == 0
		v6 := rng.IntN(2) == 1
		var flows, count, size int
		t.mu.Lock()
		burst := t.burst
		t.burst = false
		t.mu.Unlock()
		switch {
		case burst:
			// More new flows at once than the kernel map holds: the
			// overflow goes through the ring buffer, then the ignored
			// counters.
			flows = 2 * t.env.mapEntries
			count, size = flows, 18
		case rng.IntN(2) == 0: // blast
			flows = 1 + rng.IntN(16)
			count = 2000 + rng.IntN(20000)
			size = 18 + rng.IntN(1400)
		default: // churn: many short flows
			flows = 64 + rng.IntN(448)
			count = flows * (1 + rng.IntN(2))
			size = 18 + rng.IntN(200)
		}
		var tr testenv.Truth
		var err error
		dport := t.nextPorts(1)
		// A source port still held by another socket fails the bind
		// before anything is sent: try again a little later (a hang
		// guard bounds it), and say who holds it if it stays taken.
		for try := 0; ; try++ {
			if vlan {
				tr, err = vlanBlast(p, v6, uint16(100+i), 20000, dport, min(flows, 40000), count, size)
			} else {
				tr, err = p.UDPBlastTo(v6, 20000, dport, min(flows, 40000), count, size)
			}
			if !errors.Is(err, unix.EADDRINUSE) || try == 50 {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if errors.Is(err, unix.EADDRINUSE) {
			out, _ := p.A.Exec("ss", "-uanp")
			err = fmt.Errorf("%w; sockets: %s", err, out)
		}
		if err != nil {
			b.Err = fmt.Errorf("pair %d: %w", i, err)
		}
		for k, c := range tr {
			b.Truth[k] = addCounts(b.Truth[k], c)
		}
		b.Calls++
	}
}

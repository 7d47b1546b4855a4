// SPDX-License-Identifier: Apache-2.0

package main

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kflow-dev/kflow/tools/testenv"
)

// A Fault is done to the pipeline while a window's traffic runs, and
// undone before the window ends. Each step is logged with its time.
type Fault struct {
	Name string
	What string // one line for the ledger
	do   func(r *Run, rng *rand.Rand, log func(string, ...any)) error
}

// faults are every kind the run schedules; each appears at least once.
var faults = []Fault{
	{"exporter-upgrade", "SIGHUP to the exporter (programs stay attached, maps pinned), a new exporter adopts them", faultUpgrade},
	{"exporter-kill", "SIGKILL to the exporter, then a new exporter adopts the pinned maps (and counts, from the pinned ledger, what the killed one drained but never sent)", faultExporterKill},
	{"collector-kill", "SIGKILL to kflow's UDP collector, restarted 1 s later", faultCollectorKill},
	{"disk-full", "the TCP collector's tmpfs filled for at least 2 s, until the collector says it cannot write (records kept in memory, past a bound dropped and counted), then freed until it says it writes again", faultDiskFull},
	{"junk-flood", "junk datagrams at the UDP collector's port from another namespace for 2 s", faultJunk},
	{"hotplug", "an observed interface deleted and re-created", faultHotplug},
	{"collector-unreachable", "the TCP collector stopped and its route removed for 3 s, then both back (reconnect, templates resent)", faultUnreachable},
	{"map-full", "a burst of twice the flow map's capacity in new flows", faultMapFull},
	{"clickhouse-down", "SIGKILL to the ClickHouse server the UDP collector ships into, started again 3 s later (the shipper retries, finds what it sent before the kill, ships the rest)", faultClickHouseDown},
}

// restartExporter starts the next exporter and waits for it to be ready.
func (r *Run) restartExporter(log func(string, ...any)) error {
	e := r.env
	if err := e.exporter.startReady(e.dir); err != nil {
		return err
	}
	log("exporter %d ready (pid %d)", e.exporter.incarnation, e.exporter.proc.PID())
	return nil
}

func faultUpgrade(r *Run, _ *rand.Rand, log func(string, ...any)) error {
	e := r.env
	log("SIGHUP exporter (pid %d)", e.exporter.proc.PID())
	if err := e.exporter.stop(syscall.SIGHUP); err != nil {
		return fmt.Errorf("exporter after SIGHUP: %w", err)
	}
	log("exporter exited, programs left attached")
	return r.restartExporter(log)
}

func faultExporterKill(r *Run, _ *rand.Rand, log func(string, ...any)) error {
	e := r.env
	log("SIGKILL exporter (pid %d)", e.exporter.proc.PID())
	if err := e.exporter.stop(syscall.SIGKILL); err != nil {
		return err
	}
	return r.restartExporter(log)
}

func faultCollectorKill(r *Run, _ *rand.Rand, log func(string, ...any)) error {
	e := r.env
	log("SIGKILL collector-udp (pid %d)", e.udpCol.proc.PID())
	if err := e.udpCol.stop(syscall.SIGKILL); err != nil {
		return err
	}
	time.Sleep(time.Second)
	if err := e.udpCol.startReady(e.dir); err != nil {
		return err
	}
	log("collector-udp restarted (pid %d)", e.udpCol.proc.PID())
	return nil
}

func faultClickHouseDown(r *Run, _ *rand.Rand, log func(string, ...any)) error {
	ch := r.env.ch
	log("SIGKILL clickhouse-server (pid %d)", ch.PID())
	ch.Kill()
	time.Sleep(3 * time.Second)
	if err := ch.Start(); err != nil {
		return err
	}
	log("clickhouse-server answers again (pid %d, %v to start)", ch.PID(), ch.StartTime.Round(time.Millisecond))
	return nil
}

func faultDiskFull(r *Run, _ *rand.Rand, log func(string, ...any)) error {
	e := r.env
	var st unix.Statfs_t
	if err := unix.Statfs(e.tmpfs, &st); err != nil {
		return err
	}
	fill := filepath.Join(e.tmpfs, "fill")
	f, err := os.Create(fill)
	if err != nil {
		return err
	}
	// Write until the file system refuses: tmpfs has no fallocate limit
	// that would leave a few blocks free.
	buf := make([]byte, 1<<20)
	for i := 0; i < 1<<12; i++ {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				f.Close()
				return err
			}
			break
		}
	}
	f.Close()
	_ = unix.Statfs(e.tmpfs, &st)
	log("tcp collector's tmpfs full (%d blocks free)", st.Bavail)
	said := strings.Count(e.tcpCol.output(), "cannot write the flow files")
	time.Sleep(2 * time.Second)
	// The collector must say why it cannot write (at its next flush with
	// records to write: a hang guard, not a timing).
	if !testenv.WaitFor(30*time.Second, func() bool {
		return strings.Count(e.tcpCol.output(), "cannot write the flow files") > said
	}) {
		os.Remove(fill)
		return fmt.Errorf("collector-tcp did not say it cannot write within 30s of a full disk: %s", tail(e.tcpCol.output(), 5))
	}
	log("collector-tcp: %s", lastLine(e.tcpCol.output(), "cannot write the flow files"))
	again := strings.Count(e.tcpCol.output(), "writing the flow files again")
	if err := os.Remove(fill); err != nil {
		return err
	}
	log("tmpfs freed")
	if !testenv.WaitFor(30*time.Second, func() bool {
		return strings.Count(e.tcpCol.output(), "writing the flow files again") > again
	}) {
		return fmt.Errorf("collector-tcp did not say it writes again within 30s of the disk freed: %s", tail(e.tcpCol.output(), 5))
	}
	log("collector-tcp: %s", lastLine(e.tcpCol.output(), "writing the flow files again"))
	return nil
}

// lastLine is the last line of out that contains s.
func lastLine(out, s string) string {
	lines := strings.Split(out, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], s) {
			return lines[i]
		}
	}
	return ""
}

func faultJunk(r *Run, rng *rand.Rand, log func(string, ...any)) error {
	e := r.env
	var sent int
	err := e.J.Do(func() error {
		c, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: exportC.AsSlice(), Port: udpPort})
		if err != nil {
			return err
		}
		defer c.Close()
		buf := make([]byte, 1500)
		end := time.Now().Add(2 * time.Second)
		for i := 0; i < 2_000_000 && time.Now().Before(end); i++ {
			n := 1 + rng.IntN(len(buf))
			for j := range buf[:n] {
				buf[j] = byte(rng.Uint32())
			}
			// Some look like IPFIX or NetFlow v9 headers, to reach the
			// decoders past the version check.
			switch rng.IntN(3) {
			case 0:
				buf[0], buf[1] = 0, 10
			case 1:
				buf[0], buf[1] = 0, 9
			}
			if _, err := c.Write(buf[:n]); err == nil {
				sent++
			}
		}
		return nil
	})
	log("sent %d junk datagrams", sent)
	return err
}

// hotplugPair is the pair whose interface is re-created: a blast pair
// without the VLAN.
func hotplugPair(e *Env) int { return len(e.pairs) - 1 }

func faultHotplug(r *Run, _ *rand.Rand, log func(string, ...any)) error {
	e := r.env
	i := hotplugPair(e)
	p := e.pairs[i]
	r.traffic.pause(i, true)
	defer r.traffic.pause(i, false)
	time.Sleep(100 * time.Millisecond) // let the blast in progress end
	attached := strings.Count(e.exporter.output(), `"msg":"attached","interface":"`+p.AIf+`"`)
	log("delete and re-create %s", p.AIf)
	if err := p.Recreate(); err != nil {
		return err
	}
	// Traffic resumes once the exporter attached to the new interface
	// (both directions): before that its packets are not observed.
	ok := testenv.WaitFor(30*time.Second, func() bool {
		return strings.Count(e.exporter.output(), `"msg":"attached","interface":"`+p.AIf+`"`) >= attached+2
	})
	if !ok {
		return fmt.Errorf("exporter did not attach to the re-created %s within 30s", p.AIf)
	}
	log("exporter attached to the new %s", p.AIf)
	return nil
}

func faultUnreachable(r *Run, _ *rand.Rand, log func(string, ...any)) error {
	e := r.env
	// The collector goes away (its connection ends) and its address stays
	// unreachable for a while: the exporter's reconnects fail and what it
	// cannot send is counted; then it reconnects and sends templates first.
	if err := e.tcpRoute(false); err != nil {
		return err
	}
	log("route to the tcp collector removed")
	if err := e.tcpCol.stop(syscall.SIGTERM); err != nil {
		return fmt.Errorf("collector-tcp: %w", err)
	}
	log("collector-tcp stopped")
	time.Sleep(3 * time.Second)
	if err := e.tcpCol.startReady(e.dir); err != nil {
		return err
	}
	if err := e.tcpRoute(true); err != nil {
		return err
	}
	log("collector-tcp restarted (pid %d), route restored", e.tcpCol.proc.PID())
	return nil
}

func faultMapFull(r *Run, _ *rand.Rand, log func(string, ...any)) error {
	r.traffic.mu.Lock()
	r.traffic.burst = true
	r.traffic.mu.Unlock()
	log("burst of %d new flows requested", 2*r.env.mapEntries)
	return nil
}

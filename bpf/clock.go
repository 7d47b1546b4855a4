// SPDX-License-Identifier: Apache-2.0

package bpf

import (
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// clockMap converts datapath timestamps (jiffies, or CLOCK_BOOTTIME
// nanoseconds with Config.PreciseTime) to wall-clock time.
type clockMap struct {
	precise    bool
	nsPerJiffy int64
	jiffies    uint64 // a reading of both clocks at one instant
	bootNs     int64
	offset     int64 // wall clock minus CLOCK_BOOTTIME, in ns
}

// wall converts one datapath timestamp.
func (c *clockMap) wall(ts uint64) time.Time {
	if c.precise {
		return time.Unix(0, int64(ts)+c.offset)
	}
	// Signed: a timestamp may be a tick after the reading.
	boot := c.bootNs - int64(c.jiffies-ts)*c.nsPerJiffy
	return time.Unix(0, boot+c.offset)
}

// sampleClocks runs kflow_clock and returns its reading.
func sampleClocks(prog *ebpf.Program, m *ebpf.Map) (kflowClockSample, error) {
	var s kflowClockSample
	// The smallest frame the skb test run accepts: an Ethernet header.
	if _, err := prog.Run(&ebpf.RunOptions{Data: make([]byte, 14)}); err != nil {
		return s, fmt.Errorf("read datapath clocks: %w", err)
	}
	if err := m.Lookup(uint32(0), &s); err != nil {
		return s, fmt.Errorf("read datapath clocks: %w", err)
	}
	return s, nil
}

// newClockMap takes a fresh reading of both clocks and of the wall clock.
func (d *Datapath) newClockMap() (clockMap, error) {
	c := clockMap{precise: d.cfg.PreciseTime, nsPerJiffy: d.nsPerJiffy}
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return c, fmt.Errorf("read boot clock: %w", err)
	}
	c.offset = time.Now().UnixNano() - ts.Nano()
	if !c.precise {
		s, err := sampleClocks(d.objs.KflowClock, d.objs.Clock)
		if err != nil {
			return c, err
		}
		c.jiffies, c.bootNs = s.Jiffies, int64(s.BootNs)
	}
	return c, nil
}

// The kernel's tick rate does not change while it runs: measure it once.
var (
	hzOnce sync.Once
	hzNs   int64
	hzErr  error
)

// kernelHZ measures how long a jiffy lasts, in ns, by reading jiffies and
// CLOCK_BOOTTIME twice 60 ms apart, and rounds to the tick rates Linux
// can be built with.
func kernelTick(prog *ebpf.Program, m *ebpf.Map) (int64, error) {
	hzOnce.Do(func() {
		a, err := sampleClocks(prog, m)
		if err != nil {
			hzErr = err
			return
		}
		time.Sleep(60 * time.Millisecond)
		b, err := sampleClocks(prog, m)
		if err != nil {
			hzErr = err
			return
		}
		hz := float64(b.Jiffies-a.Jiffies) * 1e9 / float64(b.BootNs-a.BootNs)
		best, bestErr := 0, math.Inf(1)
		for _, c := range []int{100, 250, 300, 1000} {
			if e := math.Abs(hz-float64(c)) / float64(c); e < bestErr {
				best, bestErr = c, e
			}
		}
		if bestErr > 0.2 {
			hzErr = fmt.Errorf("kernel tick rate: measured %.0f Hz, not a rate Linux uses: %w", hz, ErrMissingFeature)
			return
		}
		hzNs = int64(time.Second) / int64(best)
	})
	return hzNs, hzErr
}

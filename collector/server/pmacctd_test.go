// SPDX-License-Identifier: Apache-2.0

package server_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/tools/testenv"
)

// pmacctd (pmacct 1.7.7) with its nfprobe plugin: a libpcap probe whose
// flow cache is softflowd's, exporting NetFlow v9 or IPFIX.
//
// What the test relies on, from pmacct 1.7.7's CONFIG-KEYS and source:
//   - nfprobe_timeouts: passive timeouts per protocol and "expint", the
//     interval between expiry checks (default 60 s): short ones make flows
//     leave the cache while the test waits.
//   - SIGINT to the core process reaches the nfprobe plugin, whose handler
//     asks for a graceful shutdown: it expires every flow (CE_EXPIRE_ALL),
//     exports them and exits. That is the final flush.
//   - pmacct has no libpcap immediate-mode option: flushPcap fills the
//     capture ring so the packets under test reach the core process.
//   - Octets are L3 octets (IPv4 total length, IPv6 payload length plus
//     the 40-octet header), the same convention as kflow's truth.
//   - The aggregate names what the v9/IPFIX template carries; tos is part
//     of the flow key upstream, and the test's traffic has TOS 0.
const pmacctdConfig = `daemonize: false
pcap_interface: %s
promisc: false
plugins: nfprobe
nfprobe_receiver: %s
nfprobe_version: %d
nfprobe_timeouts: tcp=2:tcp.rst=2:tcp.fin=2:udp=2:icmp=2:general=2:maxlife=60:expint=1
aggregate: src_host,dst_host,src_port,dst_port,proto,tos
`

func TestPmacctdIntoCollector(t *testing.T) {
	for _, version := range []int{10, 9} {
		t.Run(fmt.Sprintf("v%d", version), func(t *testing.T) {
			testenv.RequirePrivileged(t)
			bin := testenv.RequireTool(t, "pmacctd")
			p := testenv.NewPair(t)
			c := startCollector(t, p.A)
			conf := filepath.Join(t.TempDir(), "pmacctd.conf")
			if err := os.WriteFile(conf, []byte(fmt.Sprintf(pmacctdConfig, p.AIf, c.udp, version)), 0o600); err != nil {
				t.Fatal(err)
			}
			pm := testenv.StartIn(t, p.A, bin, "-f", conf)
			if !testenv.WaitFor(testenv.Patience, func() bool {
				return strings.Contains(pm.Output(), "Exporting flows to") || pm.Exited()
			}) || pm.Exited() {
				t.Fatalf("pmacctd did not start:\n%s", pm.Output())
			}
			warmUp(t, p, "pmacctd", c.warmUpStored)
			since := time.Now()
			truth := dualTraffic(t, p, 400)
			flushPcap(t, p, 20000)
			// Flows idle for 2 s leave the cache on the next 1 s check.
			if !c.waitStored(totalPackets(truth)) {
				t.Logf("collector did not store the whole truth within %v", testenv.Patience)
			}
			stopPmacctd(t, pm)
			recs := pairFlows(t, p, withoutWarmUp(c.stop(t)))
			compareTruth(t, recs, truth, false, since)
			if t.Failed() {
				t.Logf("pmacctd output:\n%s\ncollector output:\n%s", pm.Output(), c.proc.Output())
			}
		})
	}
}

// stopPmacctd sends SIGINT to pmacctd's core process, which passes it to
// the plugin: the nfprobe plugin exports every flow it still holds, then
// both exit.
func stopPmacctd(t *testing.T, pm *testenv.Proc) {
	t.Helper()
	err := pm.Stop(syscall.SIGINT, testenv.Patience)
	if errors.Is(err, testenv.ErrTimeout) {
		t.Errorf("pmacctd (pid %d) did not exit within %v of SIGINT: killed", pm.PID(), testenv.Patience)
		return
	}
	if err != nil {
		t.Logf("pmacctd: %v", err)
	}
}

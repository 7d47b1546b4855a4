// SPDX-License-Identifier: Apache-2.0

package interop

import (
	"encoding/csv"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/tools/testenv"
)

// nfacctd is pmacct's NetFlow/IPFIX collector with the print plugin
// appending csv to a file every second.
type nfacctd struct {
	proc *testenv.Proc
	ns   *testenv.NS
	port int
	csv  string
}

// nfacctdConfig aggregates by the 5-tuple; protocols as numbers.
const nfacctdConfig = `daemonize: false
nfacctd_ip: 127.0.0.1
nfacctd_port: %d
plugins: print[flows]
print_output[flows]: csv
print_output_file[flows]: %s
print_output_file_append[flows]: true
print_refresh_time[flows]: 1
print_num_protos[flows]: true
aggregate[flows]: src_host,dst_host,src_port,dst_port,proto
`

// startNfacctd starts nfacctd on 127.0.0.1:port in ns; extra lines are
// added to its configuration.
func startNfacctd(t *testing.T, ns *testenv.NS, port int, extra ...string) *nfacctd {
	t.Helper()
	bin := testenv.RequireTool(t, "nfacctd")
	dir := t.TempDir()
	out := filepath.Join(dir, "flows.csv")
	conf := filepath.Join(dir, "nfacctd.conf")
	config := fmt.Sprintf(nfacctdConfig, port, out) + strings.Join(extra, "\n") + "\n"
	if err := os.WriteFile(conf, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	proc := testenv.StartIn(t, ns, bin, "-f", conf)
	if !testenv.WaitFor(testenv.Patience, func() bool {
		return strings.Contains(proc.Output(), "waiting for NetFlow/IPFIX data") || proc.Exited()
	}) || proc.Exited() {
		t.Fatalf("nfacctd did not start:\n%s", proc.Output())
	}
	return &nfacctd{proc: proc, ns: ns, port: port, csv: out}
}

// stop ends nfacctd with SIGINT. nfacctd 1.7.7 acts on the signal only
// when its receive call returns, so empty datagrams (which it discards)
// wake it up until it exits. (It keeps SIGTERM blocked while it waits for
// data, and then does not exit even when woken.)
func (n *nfacctd) stop(t *testing.T) {
	t.Helper()
	if err := n.proc.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	var poke *net.UDPConn
	err := n.ns.Do(func() (err error) {
		poke, err = net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: n.port})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer poke.Close()
	deadline := time.Now().Add(testenv.Patience)
	for {
		_, _ = poke.Write(nil)
		err := n.proc.Wait(200 * time.Millisecond)
		if !errors.Is(err, testenv.ErrTimeout) {
			if err != nil {
				t.Errorf("nfacctd: %v\n%s", err, n.proc.Output())
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("nfacctd did not exit within %v of SIGINT:\n%s", testenv.Patience, n.proc.Output())
		}
	}
	if testing.Verbose() {
		t.Logf("nfacctd log:\n%s", n.proc.Output())
	}
}

// waitFlows reads the csv until it holds want's counts (the print plugin
// writes once a second, so the last records arrive a moment after kflow
// sent them; testenv.Patience bounds a hang), and returns the last reading.
func (n *nfacctd) waitFlows(t *testing.T, p *testenv.Pair, want flows) flows {
	t.Helper()
	var got flows
	var err error
	testenv.WaitFor(testenv.Patience, func() bool {
		got, err = n.read(p)
		return err == nil && sameCounts(got, want)
	})
	if err != nil {
		t.Fatalf("nfacctd csv: %v", err)
	}
	return got
}

// waitScaled reads the csv until what it holds stops changing between
// two of the print plugin's refreshes (the test does not know the scaled
// counts in advance), for at most a few refreshes.
func (n *nfacctd) waitScaled(t *testing.T, p *testenv.Pair) flows {
	t.Helper()
	var got, last flows
	var err error
	testenv.WaitFor(6*time.Second, func() bool {
		time.Sleep(1100 * time.Millisecond) // one refresh
		last = got
		got, err = n.read(p)
		return err == nil && len(got) > 0 && sameCounts(got, last)
	})
	if err != nil {
		t.Fatalf("nfacctd csv: %v", err)
	}
	return got
}

func sameCounts(got, want flows) bool {
	if len(got) != len(want) {
		return false
	}
	for id, w := range want {
		g := got[id]
		if g.Packets != w.Packets || g.Octets != w.Octets {
			return false
		}
	}
	return true
}

// read sums the rows of the pair's addresses: each refresh appends the
// flows of its interval, with a header line when the file was empty.
func (n *nfacctd) read(p *testenv.Pair) (flows, error) {
	b, err := os.ReadFile(n.csv)
	if os.IsNotExist(err) {
		return flows{}, nil
	}
	if err != nil {
		return nil, err
	}
	r := csv.NewReader(strings.NewReader(string(b)))
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil {
		return nil, err
	}
	got := flows{}
	var col map[string]int
	for _, row := range rows {
		if len(row) > 0 && row[0] == "SRC_IP" {
			col = map[string]int{}
			for i, name := range row {
				col[name] = i
			}
			continue
		}
		if col == nil || len(row) != len(col) {
			return nil, fmt.Errorf("row %v without a matching header", row)
		}
		get := func(name string) string { return strings.TrimSpace(row[col[name]]) }
		src, err1 := netip.ParseAddr(get("SRC_IP"))
		dst, err2 := netip.ParseAddr(get("DST_IP"))
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("row %v: %v %v", row, err1, err2)
		}
		src, dst = src.Unmap(), dst.Unmap()
		if !p.Owns(src) || !p.Owns(dst) {
			continue
		}
		var nums [5]uint64
		for i, name := range []string{"SRC_PORT", "DST_PORT", "PROTOCOL", "PACKETS", "BYTES"} {
			if nums[i], err = strconv.ParseUint(get(name), 10, 64); err != nil {
				return nil, fmt.Errorf("row %v: %s: %w", row, name, err)
			}
		}
		id := flowID{Src: src, Dst: dst, SrcPort: uint16(nums[0]), DstPort: uint16(nums[1]), Proto: uint8(nums[2])}
		got.add(id, nums[3], nums[4], 0)
	}
	return got, nil
}

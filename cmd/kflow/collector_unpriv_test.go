// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/kflow-dev/kflow/tools/testenv"
)

// The collector needs no privilege at all on ports above 1024, as the
// shipped unit runs it (DynamicUser, empty capability set): started as an
// unprivileged uid with no capability, it receives IPFIX over UDP and TCP
// and stores every record in files that uid owns.
func TestCollectorRunsUnprivileged(t *testing.T) {
	testenv.RequirePrivileged(t) // to start a process as another uid
	const nobody = 65534
	src := testenv.KflowBinary(t)

	// A copy of the binary and a data directory the unprivileged user can
	// reach: t.TempDir's directories are root's, mode 0700.
	top := t.TempDir()
	for _, d := range []string{filepath.Dir(top), top} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	exe := filepath.Join(top, "kflow")
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exe, b, 0o755); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(top, "flows")
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	ready := filepath.Join(dir, "ready")
	p := testenv.StartAs(t, nobody, nobody, exe, "-j", "collector", "run", "--no-default-listen",
		"--listen", "udp://127.0.0.1:0", "--listen", "tcp://127.0.0.1:0",
		"--dir", dir, "--ready-file", ready, "--flush-interval", "100ms")
	if err := testenv.WaitFile(ready, testenv.Patience, p); err != nil {
		t.Fatalf("%v\n%s", err, p.Output())
	}

	// What the kernel says about the process: the unprivileged uid, and
	// no capability it could use.
	status, err := os.ReadFile("/proc/" + strconv.Itoa(p.PID()) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(status), "\n") {
		k, v, _ := strings.Cut(l, ":")
		v = strings.TrimSpace(v)
		switch k {
		case "Uid", "Gid":
			for _, id := range strings.Fields(v) {
				if id != strconv.Itoa(nobody) {
					t.Errorf("%s: %s, want %d everywhere", k, v, nobody)
					break
				}
			}
		case "CapEff", "CapPrm", "CapAmb":
			if strings.Trim(v, "0") != "" {
				t.Errorf("%s: %s, want no capability", k, v)
			}
		}
	}

	addrs, err := os.ReadFile(ready)
	if err != nil {
		t.Fatal(err)
	}
	var udp, tcp string
	for _, l := range strings.Fields(string(addrs)) {
		if a, ok := strings.CutPrefix(l, "udp://"); ok {
			udp = a
		}
		if a, ok := strings.CutPrefix(l, "tcp://"); ok {
			tcp = a
		}
	}
	if udp == "" || tcp == "" {
		t.Fatalf("ready file %q lacks a UDP or TCP address", addrs)
	}
	recs := collectorRecords(90)
	sendIPFIX(t, "udp", udp, recs[:60], 1)
	sendIPFIX(t, "tcp", tcp, recs[60:], 2)
	waitSocketsRead(t, udp, tcp)
	if err := p.Stop(syscall.SIGTERM, testenv.Patience); err != nil {
		t.Fatalf("collector: %v\n%s", err, p.Output())
	}

	// Every file is the unprivileged user's, and holds every record.
	err = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if st := info.Sys().(*syscall.Stat_t); st.Uid != nobody {
			t.Errorf("%s is owned by uid %d, want %d", path, st.Uid, nobody)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"file", "stat", "-j", dir}, &stdout, &stderr); code != 0 {
		t.Fatalf("file stat: %d: %s", code, stderr.String())
	}
	var fs struct {
		Total struct {
			Total struct{ Flows, Packets, Bytes uint64 }
		}
	}
	if err := json.Unmarshal(stdout.Bytes(), &fs); err != nil {
		t.Fatal(err)
	}
	var pk uint64
	for _, r := range recs {
		pk += r.Packets
	}
	if got := fs.Total.Total; got.Flows != 90 || got.Packets != pk || got.Bytes != 100*pk {
		t.Errorf("stored %+v, want 90 flows, %d packets, %d bytes\ncollector output:\n%s", got, pk, 100*pk, p.Output())
	}
}

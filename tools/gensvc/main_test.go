// SPDX-License-Identifier: Apache-2.0

package main

import (
	"os"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	in := "# comment\n\nssh\t22/tcp\t# SSH\nhttps 443/tcp\nhttps 443/udp\nwww 443/tcp alias\nzip 6/ddp\n"
	got, err := parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []entry{{6, 22, "ssh"}, {6, 443, "https"}, {17, 443, "https"}}
	if len(got) != len(want) {
		t.Fatalf("%v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("%d: %v, want %v", i, got[i], want[i])
		}
	}
	if _, err := parse(strings.NewReader("bad 22tcp\n")); err == nil {
		t.Error("a line without PORT/PROTO parsed")
	}
}

// TestCommittedTable: the committed table is what this machine's
// /etc/services generates (when it has Debian's netbase file).
func TestCommittedTable(t *testing.T) {
	f, err := os.Open("/etc/services")
	if err != nil {
		t.Skip("no /etc/services here")
	}
	defer f.Close()
	entries, err := parse(f)
	if err != nil {
		t.Fatal(err)
	}
	want, err := generate(entries, "Debian netbase's /etc/services")
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("../../collector/service/table.go")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("collector/service/table.go differs from what /etc/services generates: run go generate ./collector/service")
	}
}

// SPDX-License-Identifier: Apache-2.0

package wire

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

func TestPutUintSaturates(t *testing.T) {
	for _, tt := range []struct {
		n    int
		v    uint64
		want []byte
	}{
		{1, 0x1ff, []byte{0xff}},
		{2, 0x1234, []byte{0x12, 0x34}},
		{4, 1 << 40, []byte{0xff, 0xff, 0xff, 0xff}},
		{8, 1<<64 - 1, bytes.Repeat([]byte{0xff}, 8)},
	} {
		b := make([]byte, tt.n)
		putUint(b, tt.v)
		if !bytes.Equal(b, tt.want) {
			t.Errorf("putUint(%d octets, %#x) = %x, want %x", tt.n, tt.v, b, tt.want)
		}
		if u, ok := getUint(tt.want); !ok || (tt.n == 2 && u != tt.v) {
			t.Errorf("getUint(%x) = %#x, %v", tt.want, u, ok)
		}
	}
	if _, ok := getUint(make([]byte, 9)); ok {
		t.Error("getUint accepted 9 octets")
	}
}

func TestBuilderPadding(t *testing.T) {
	b := NewBuilder(40, 4, 4)
	if r := b.Reserve(256, 5); r == nil {
		t.Fatal("5 octets did not fit")
	}
	// Set: 4 + 5 = 9, padded 12; message 4 + 12 = 16. A new set of 4+20
	// would make 40: fits; 4+21 padded to 28 would make 44: does not.
	if b.Fits(257, 21) || !b.Fits(257, 20) {
		t.Error("Fits ignores padding")
	}
	b.Reserve(256, 3) // same set: 12 octets, no padding
	msg := b.Finish()
	want := []byte{0, 0, 0, 0, 1, 0, 0, 12, 0, 0, 0, 0, 0, 0, 0, 0}
	if !bytes.Equal(msg, want) {
		t.Errorf("message %x, want %x", msg, want)
	}
}

func TestRefresh(t *testing.T) {
	t0 := time.Unix(1000, 0)
	r := Refresh{Interval: time.Minute, Messages: 2}
	if tpl, opt := r.Due(t0); !tpl || !opt {
		t.Fatal("first message without templates")
	}
	r.Sent(t0, true, true)
	if tpl, _ := r.Due(t0); tpl {
		t.Error("due right after sending")
	}
	r.Sent(t0, false, false)
	if tpl, _ := r.Due(t0); !tpl {
		t.Error("not due after 2 messages")
	}
}

func TestDecodeErrorText(t *testing.T) {
	err := error(&DecodeError{Format: "ipfix", Version: 10, Domain: 5, TemplateID: 256, Offset: 40, Err: ErrTruncated})
	if got := err.Error(); got != "ipfix v10 domain 5 template 256 at offset 40: truncated" {
		t.Errorf("Error() = %q", got)
	}
	if !errors.Is(err, ErrTruncated) {
		t.Error("does not unwrap")
	}
}

func TestTemplatesPut(t *testing.T) {
	s := NewTemplates(Limits{MaxTemplates: 1})
	if err := s.Put(1, 256, 0, nil); !errors.Is(err, ErrTemplate) {
		t.Errorf("zero fields: %v", err)
	}
	if err := s.Put(1, 256, 0, []Field{{ID: 8, Length: 4}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(2, 256, 0, []Field{{ID: 8, Length: 4}}); !errors.Is(err, ErrTemplateLimit) {
		t.Errorf("second domain over the limit: %v", err)
	}
	if t1 := s.Get(1, 256); t1 == nil || t1.MinLen != 4 {
		t.Errorf("Get = %+v", t1)
	}
}

func TestDecodeSetCountsDataRecords(t *testing.T) {
	s := NewTemplates(Limits{})
	// An options template whose fields the record model does not know:
	// its records yield no options data but still count.
	if err := s.Put(7, 300, 1, []Field{{ID: 999, Length: 2}, {ID: 998, Length: 2}}); err != nil {
		t.Fatal(err)
	}
	var d Data
	ctx := Context{Domain: 7, UptimeMs: -1}
	body := []byte{0, 1, 0, 2, 0, 3, 0, 4, 0} // two records and one octet of padding
	if err := s.DecodeSet(&d, &ctx, s.Get(7, 300), body, 20); err != nil {
		t.Fatal(err)
	}
	if d.DataRecords != 2 || len(d.Records) != 0 || len(d.Stats) != 0 {
		t.Errorf("DataRecords %d, records %d, stats %d; want 2, 0, 0", d.DataRecords, len(d.Records), len(d.Stats))
	}
	d.Reset()
	if d.DataRecords != 0 {
		t.Error("Reset kept DataRecords")
	}
}

func TestICMPPortConventions(t *testing.T) {
	s := NewTemplates(Limits{})
	fields := []Field{{ID: IEProtocolIdentifier, Length: 1}, {ID: IESourceTransportPort, Length: 2}, {ID: IEDestinationTransportPort, Length: 2}}
	if err := s.Put(0, 256, 0, fields); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name             string
		body             []byte
		typ, code        uint8
		srcPort, dstPort uint16
	}{
		{"type*256+code in the destination port", []byte{1, 0, 0, 3, 1}, 3, 1, 0, 0},
		{"fprobe: type and code in the ports", []byte{1, 0, 8, 0, 0}, 8, 0, 0, 0},
		{"fprobe: destination unreachable", []byte{1, 0, 3, 0, 13}, 3, 13, 0, 0},
		{"echo reply: all zero", []byte{1, 0, 0, 0, 0}, 0, 0, 0, 0},
		{"udp keeps its ports", []byte{17, 0, 8, 0, 53}, 0, 0, 8, 53},
	} {
		var d Data
		ctx := Context{UptimeMs: -1}
		if err := s.DecodeSet(&d, &ctx, s.Get(0, 256), tt.body, 0); err != nil || len(d.Records) != 1 {
			t.Fatalf("%s: %v, %d records", tt.name, err, len(d.Records))
		}
		r := d.Records[0]
		if r.ICMPType != tt.typ || r.ICMPCode != tt.code || r.SrcPort != tt.srcPort || r.DstPort != tt.dstPort {
			t.Errorf("%s: type %d code %d ports %d/%d", tt.name, r.ICMPType, r.ICMPCode, r.SrcPort, r.DstPort)
		}
	}
}

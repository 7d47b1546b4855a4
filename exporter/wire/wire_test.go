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

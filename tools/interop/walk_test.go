// SPDX-License-Identifier: Apache-2.0

package interop

import (
	"encoding/binary"
	"fmt"
	"testing"
)

// A minimal IPFIX message walker, independent of kflow's decoder: it
// follows templates and counts the data records of each message, to
// check sequence numbers the way RFC 7011 and nfdump each count them.

// ipfixMessage is what the walker learned of one message.
type ipfixMessage struct {
	Sequence      uint32
	FlowRecords   int // data records of (non-options) templates
	OptionRecords int // data records of options templates
}

type walkTemplate struct {
	options bool
	lengths []uint16 // 65535: variable length
}

// walkIPFIX reads the messages of one IPFIX stream (one observation domain).
func walkIPFIX(msgs [][]byte) ([]ipfixMessage, error) {
	tpls := map[uint16]walkTemplate{}
	var out []ipfixMessage
	for i, m := range msgs {
		if len(m) < 16 || binary.BigEndian.Uint16(m) != 10 || int(binary.BigEndian.Uint16(m[2:])) != len(m) {
			return nil, fmt.Errorf("message %d: not an IPFIX message of %d octets", i, len(m))
		}
		info := ipfixMessage{Sequence: binary.BigEndian.Uint32(m[8:])}
		for b := m[16:]; len(b) > 0; {
			if len(b) < 4 {
				return nil, fmt.Errorf("message %d: %d stray octets", i, len(b))
			}
			id, n := binary.BigEndian.Uint16(b), int(binary.BigEndian.Uint16(b[2:]))
			if n < 4 || n > len(b) {
				return nil, fmt.Errorf("message %d: set %d of length %d in %d octets", i, id, n, len(b))
			}
			body := b[4:n]
			b = b[n:]
			var err error
			switch {
			case id == 2 || id == 3:
				err = walkTemplates(body, id == 3, tpls)
			case id >= 256:
				t, ok := tpls[id]
				if !ok {
					return nil, fmt.Errorf("message %d: data set %d before its template", i, id)
				}
				var recs int
				recs, err = countRecords(body, t)
				if t.options {
					info.OptionRecords += recs
				} else {
					info.FlowRecords += recs
				}
			default:
				err = fmt.Errorf("reserved set id %d", id)
			}
			if err != nil {
				return nil, fmt.Errorf("message %d: %w", i, err)
			}
		}
		out = append(out, info)
	}
	return out, nil
}

func walkTemplates(b []byte, options bool, tpls map[uint16]walkTemplate) error {
	for len(b) >= 4 {
		id, count := binary.BigEndian.Uint16(b), int(binary.BigEndian.Uint16(b[2:]))
		b = b[4:]
		if options {
			if len(b) < 2 {
				return fmt.Errorf("options template %d: short", id)
			}
			b = b[2:] // scope field count
		}
		t := walkTemplate{options: options}
		for f := 0; f < count; f++ {
			if len(b) < 4 {
				return fmt.Errorf("template %d: short", id)
			}
			ie, l := binary.BigEndian.Uint16(b), binary.BigEndian.Uint16(b[2:])
			b = b[4:]
			if ie&0x8000 != 0 {
				if len(b) < 4 {
					return fmt.Errorf("template %d: short", id)
				}
				b = b[4:] // enterprise number
			}
			t.lengths = append(t.lengths, l)
		}
		tpls[id] = t
	}
	return nil
}

// countRecords counts the records of a data set; what is left shorter
// than a record is padding.
func countRecords(b []byte, t walkTemplate) (int, error) {
	n := 0
	for len(b) > 0 {
		rest := b
		ok := true
		for _, l := range t.lengths {
			size := int(l)
			if l == 65535 {
				if len(rest) < 1 {
					ok = false
					break
				}
				size, rest = int(rest[0]), rest[1:]
				if size == 255 {
					if len(rest) < 2 {
						ok = false
						break
					}
					size, rest = int(binary.BigEndian.Uint16(rest)), rest[2:]
				}
			}
			if len(rest) < size {
				ok = false
				break
			}
			rest = rest[size:]
		}
		if !ok || len(rest) == len(b) {
			for _, p := range b {
				if p != 0 {
					return n, fmt.Errorf("%d octets after %d records are not padding", len(b), n)
				}
			}
			return n, nil
		}
		b = rest
		n++
	}
	return n, nil
}

// ipfixSequenceGaps returns how many messages have a sequence number that
// is not the count of data records sent before them, as RFC 7011 counts
// (every data record) and as nfdump 1.7 checks: nfdump adds only the
// records of (non-options) data templates and reports a mismatch once it
// has seen flow data.
func ipfixSequenceGaps(ms []ipfixMessage) (rfc, nfdump int) {
	var all, expect uint32
	seenFlows := false
	for _, m := range ms {
		if m.Sequence != all {
			rfc++
		}
		if m.Sequence != expect && seenFlows {
			nfdump++
		}
		all += uint32(m.FlowRecords + m.OptionRecords)
		expect = m.Sequence + uint32(m.FlowRecords)
		seenFlows = seenFlows || m.FlowRecords > 0
	}
	return rfc, nfdump
}

func TestWalkIPFIX(t *testing.T) {
	// Message 0: a template (256: two 4-octet fields), an options template
	// (257: scope of 4 octets, one variable-length field), one options
	// record and two flow records. Message 1: one flow record.
	tpl := []byte{0, 2, 0, 16, 1, 0, 0, 2, 0, 8, 0, 4, 0, 12, 0, 4}
	opt := []byte{0, 3, 0, 18, 1, 1, 0, 2, 0, 1, 0, 10, 0, 4, 0, 82, 255, 255}
	optData := []byte{1, 1, 0, 12, 0, 0, 0, 2, 3, 'e', 't', 'h'}
	data2 := []byte{1, 0, 0, 20, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4}
	data1 := []byte{1, 0, 0, 12, 1, 1, 1, 1, 2, 2, 2, 2}
	msg := func(seq uint32, sets ...[]byte) []byte {
		m := []byte{0, 10, 0, 0, 0, 0, 0, 0, byte(seq >> 24), byte(seq >> 16), byte(seq >> 8), byte(seq), 0, 0, 0, 0}
		for _, s := range sets {
			m = append(m, s...)
		}
		binary.BigEndian.PutUint16(m[2:], uint16(len(m)))
		return m
	}
	for _, tc := range []struct {
		name        string
		seq1        uint32
		rfc, nfdump int
	}{
		{"rfc", 3, 0, 1},    // options records counted: nfdump disagrees
		{"nfdump", 2, 1, 0}, // options records left out
	} {
		ms, err := walkIPFIX([][]byte{msg(0, tpl, opt, optData, data2), msg(tc.seq1, data1)})
		if err != nil {
			t.Fatal(err)
		}
		if ms[0].FlowRecords != 2 || ms[0].OptionRecords != 1 || ms[1].FlowRecords != 1 {
			t.Fatalf("%s: walked %+v", tc.name, ms)
		}
		if rfc, nfdump := ipfixSequenceGaps(ms); rfc != tc.rfc || nfdump != tc.nfdump {
			t.Errorf("%s: gaps rfc %d nfdump %d, want %d %d", tc.name, rfc, nfdump, tc.rfc, tc.nfdump)
		}
	}
}

func TestParseFlags(t *testing.T) {
	for in, want := range map[string]uint8{"........": 0, "...A.R..": 0x14, "CEUAPRSF": 0xff, "......S.": 0x02, "27": 27} {
		if got, err := parseFlags(in); err != nil || got != want {
			t.Errorf("parseFlags(%q) = %#x, %v; want %#x", in, got, err, want)
		}
	}
	if _, err := parseFlags("..X....."); err == nil {
		t.Error("parseFlags accepted ..X.....")
	}
}

// SPDX-License-Identifier: Apache-2.0

package transport

import (
	"errors"
	"testing"
)

func TestParseTarget(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Target
		err  bool
	}{
		{in: "ipfix://198.18.0.1:4739", want: Target{Format: IPFIX, Addr: "198.18.0.1:4739"}},
		{in: "ipfix://collector", want: Target{Format: IPFIX, Addr: "collector:4739"}},
		{in: "ipfix+tcp://[fd00::1]:9995", want: Target{Format: IPFIX, TCP: true, Addr: "[fd00::1]:9995"}},
		{in: "ipfix+tcp://[fd00::1]", want: Target{Format: IPFIX, TCP: true, Addr: "[fd00::1]:4739"}},
		{in: "nfv9://127.0.0.1:2055", want: Target{Format: NetFlowV9, Addr: "127.0.0.1:2055"}},
		{in: "NFV5://127.0.0.1", want: Target{Format: NetFlowV5, Addr: "127.0.0.1:2055"}},
		{in: "127.0.0.1:2055", err: true},
		{in: "sflow://127.0.0.1", err: true},
		{in: "ipfix://", err: true},
		{in: "ipfix://host:0", err: true},
		{in: "ipfix://host:99999", err: true},
		{in: "ipfix://host:port", err: true},
	} {
		got, err := ParseTarget(tc.in)
		if tc.err {
			if !errors.Is(err, ErrBadTarget) {
				t.Errorf("%q: err %v, want ErrBadTarget", tc.in, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: got %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

// SPDX-License-Identifier: Apache-2.0

package bpf

import (
	"errors"
	"strings"
	"testing"

	"github.com/kflow-dev/kflow/tools/testenv"
)

func TestLoadSmoke(t *testing.T) {
	testenv.RequirePrivileged(t)
	for _, shared := range []bool{false, true} {
		d, err := Load(Config{MapEntries: 16, PerCPUValues: !shared})
		if err != nil {
			var ve *VerifierError
			if errors.As(err, &ve) {
				t.Fatalf("%v\n%s", err, strings.Join(ve.Tail(60), "\n"))
			}
			t.Fatal(err)
		}
		d.Close()
	}
}

// SPDX-License-Identifier: Apache-2.0

// Package testenv holds helpers for kflow's privileged tests: a capability
// probe that skips (or, in CI, fails) with a reason, and throwaway network
// namespaces joined by veth pairs.
package testenv

import (
	"os"
	"testing"

	"github.com/cilium/ebpf"
)

// RequireEnv is the variable that turns privileged skips into failures.
const RequireEnv = "KFLOW_REQUIRE_PRIVILEGED"

// RequirePrivileged skips the test unless the process can create BPF maps
// (the real capability, probed, not assumed from the uid). With
// KFLOW_REQUIRE_PRIVILEGED=1 it fails instead of skipping.
func RequirePrivileged(tb testing.TB) {
	tb.Helper()
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	if err == nil {
		m.Close()
		return
	}
	if os.Getenv(RequireEnv) == "1" {
		tb.Fatalf("privileged test cannot run: creating a BPF map: %v (%s=1)", err, RequireEnv)
	}
	tb.Skipf("needs CAP_BPF (creating a BPF map: %v); run as root", err)
}

// RequireFeature skips the test when err says the machine lacks something
// it needs (kernel BTF, a network namespace), with what as the reason; with
// KFLOW_REQUIRE_PRIVILEGED=1 (CI, where everything is there) it fails
// instead. It does nothing when err is nil.
func RequireFeature(tb testing.TB, what string, err error) {
	tb.Helper()
	if err == nil {
		return
	}
	if os.Getenv(RequireEnv) == "1" {
		tb.Fatalf("%s: %v (%s=1)", what, err, RequireEnv)
	}
	tb.Skipf("%s: %v", what, err)
}

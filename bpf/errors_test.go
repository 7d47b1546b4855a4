// SPDX-License-Identifier: Apache-2.0

package bpf

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/kflow-dev/kflow/tools/testenv"
)

func TestPinDirNotBPFFS(t *testing.T) {
	dir := t.TempDir()
	_, err := Load(Config{PinDir: dir + "/kflow"})
	if !errors.Is(err, ErrNoBPFFS) {
		t.Fatalf("Load with a pin dir on %s: %v, want ErrNoBPFFS", dir, err)
	}
	if !strings.Contains(err.Error(), "mount -t bpf bpf") {
		t.Errorf("error does not say what to do: %v", err)
	}
}

func TestBadRingBufferSize(t *testing.T) {
	_, err := Load(Config{RingBufferBytes: 5000})
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("got %v, want ErrInvalidConfig", err)
	}
}

// TestNotPermitted runs Load as an unprivileged user in a child process:
// the error says which capabilities are missing, not a bare errno.
func TestNotPermitted(t *testing.T) {
	if os.Getenv("KFLOW_TEST_UNPRIVILEGED_CHILD") == "1" {
		_, err := Load(Config{MapEntries: 16})
		if err == nil {
			os.Stdout.WriteString("loaded\n")
			return
		}
		os.Stdout.WriteString("error: " + err.Error() + "\n")
		if errors.Is(err, ErrNotPermitted) {
			os.Stdout.WriteString("is ErrNotPermitted\n")
		}
		return
	}
	testenv.RequirePrivileged(t)
	// The child becomes nobody before it runs (what "setpriv --reuid
	// --regid --clear-groups" does, with no tool to depend on: vmtest's
	// guests have none). A root process that changes its user ids loses
	// every capability, and exec without file capabilities gives none.
	// Nobody cannot enter go test's private build directory: the child
	// runs a copy of the test binary.
	dir, err := os.MkdirTemp("", "kflow-unprivileged-") // t.TempDir's parent is private too
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "bpf.test")
	b, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^TestNotPermitted$", "-test.count=1")
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}}}
	cmd.Env = append(os.Environ(), "KFLOW_TEST_UNPRIVILEGED_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	s := string(out)
	if !strings.Contains(s, "is ErrNotPermitted") || !strings.Contains(s, "CAP_BPF") {
		t.Fatalf("unprivileged Load did not report missing capabilities:\n%s", s)
	}
}

// TestMissingFeatureMessage: a kernel without a required feature gets an
// error naming the feature, the version that brought it and kflow's
// minimum kernel, not a verifier log.
func TestMissingFeatureMessage(t *testing.T) {
	saved := kernelRequirements
	t.Cleanup(func() { kernelRequirements = saved })
	kernelRequirements = append(kernelRequirements[:0:0], kernelRequirements...)
	for i := range kernelRequirements {
		if kernelRequirements[i].name == FeatureAtomics {
			kernelRequirements[i].probe = func() error { return fmt.Errorf("probe: %w", ebpf.ErrNotSupported) }
		} else {
			kernelRequirements[i].probe = func() error { return nil }
		}
	}
	err := checkKernel()
	if !errors.Is(err, ErrMissingFeature) || !errors.Is(err, ebpf.ErrNotSupported) {
		t.Fatalf("got %v, want ErrMissingFeature wrapping ErrNotSupported", err)
	}
	for _, s := range []string{"atomic", "Linux 5.12", "kflow needs Linux " + MinKernel} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not say %q", err, s)
		}
	}
}

// TestKernelHasRequirements: the kernel the tests run on (natively, or in
// vmtest's VMs) passes every requirement probe.
func TestKernelHasRequirements(t *testing.T) {
	testenv.RequirePrivileged(t)
	for _, r := range kernelRequirements {
		if err := r.probe(); err != nil {
			t.Errorf("%s (%s): %v", r.name, r.what, err)
		}
	}
}

// SPDX-License-Identifier: Apache-2.0

package bpf

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

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
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("setpriv (util-linux) not installed")
	}
	cmd := exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
		os.Args[0], "-test.run=^TestNotPermitted$", "-test.count=1")
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

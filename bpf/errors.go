// SPDX-License-Identifier: Apache-2.0

package bpf

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// Sentinel errors callers can branch on with errors.Is.
var (
	ErrInvalidConfig    = errors.New("invalid datapath configuration")
	ErrNotPermitted     = errors.New("not permitted: run as root or with CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON")
	ErrNoBPFFS          = errors.New("no bpffs mounted")
	ErrPinMismatch      = errors.New("pinned maps do not match this configuration")
	ErrVerifier         = errors.New("the kernel's verifier rejected a program")
	ErrMissingFeature   = errors.New("the kernel lacks a feature kflow needs")
	ErrUnknownInterface = errors.New("no such interface")
)

// VerifierError carries the verifier's log of a rejected program.
type VerifierError struct {
	Program string
	Log     []string // the whole log, one line per element
	err     error
}

func (e *VerifierError) Error() string {
	return fmt.Sprintf("load program %s: %v: %s", e.Program, ErrVerifier, e.tail(2))
}

func (e *VerifierError) Unwrap() []error { return []error{ErrVerifier, e.err} }

// Tail returns the last n lines of the verifier log.
func (e *VerifierError) Tail(n int) []string {
	if len(e.Log) <= n {
		return e.Log
	}
	return e.Log[len(e.Log)-n:]
}

func (e *VerifierError) tail(n int) string { return strings.Join(e.Tail(n), "; ") }

// checkPrerequisites turns the usual missing prerequisites into errors that
// say what to do, before the kernel answers with a bare errno.
func checkPrerequisites(pinDir string) error {
	if pinDir != "" {
		if err := checkBPFFS(pinDir); err != nil {
			return err
		}
	}
	return nil
}

// checkBPFFS verifies that dir is (or would be created) on a bpffs mount.
func checkBPFFS(dir string) error {
	p := dir
	for {
		var st unix.Statfs_t
		err := unix.Statfs(p, &st)
		if err == nil {
			if st.Type != unix.BPF_FS_MAGIC {
				return fmt.Errorf("pin directory %s: %w there (mount one with 'mount -t bpf bpf %s', or choose a directory under /sys/fs/bpf)", dir, ErrNoBPFFS, dir)
			}
			return nil
		}
		if !os.IsNotExist(err) {
			return fmt.Errorf("pin directory %s: %w", dir, err)
		}
		parent := p[:strings.LastIndex(p, "/")]
		if parent == "" || parent == p {
			return fmt.Errorf("pin directory %s: %w", dir, ErrNoBPFFS)
		}
		p = parent
	}
}

// explainLoadError wraps a collection load error with what the user can do.
func explainLoadError(err error, pinDir string) error {
	var ve *ebpf.VerifierError
	if errors.As(err, &ve) {
		prog := "?"
		if i := strings.Index(err.Error(), "program "); i >= 0 {
			rest := err.Error()[i+len("program "):]
			if j := strings.IndexAny(rest, ": "); j > 0 {
				prog = rest[:j]
			}
		}
		return &VerifierError{Program: prog, Log: ve.Log, err: err}
	}
	switch {
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		// The library's own hint (raise RLIMIT_MEMLOCK) misleads on
		// kernels that account BPF memory to cgroups: say what to do.
		return &briefError{msg: "load datapath: " + ErrNotPermitted.Error(), errs: []error{ErrNotPermitted, err}}
	case errors.Is(err, ebpf.ErrMapIncompatible):
		return fmt.Errorf("load datapath: %w in %s: remove the directory or load with the same map sizes and value mode: %w",
			ErrPinMismatch, pinDir, err)
	case errors.Is(err, ebpf.ErrNotSupported):
		return fmt.Errorf("load datapath: %w: %w", ErrMissingFeature, err)
	}
	return fmt.Errorf("load datapath: %w", err)
}

// briefError prints a short message but still matches every error it
// wraps with errors.Is and errors.As.
type briefError struct {
	msg  string
	errs []error
}

func (e *briefError) Error() string   { return e.msg }
func (e *briefError) Unwrap() []error { return e.errs }

// SPDX-License-Identifier: Apache-2.0

package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/kflow-dev/kflow/bpf"
)

// exitMissingFeature is feature probe's exit status when a feature kflow
// needs is missing.
const exitMissingFeature = 1

// probeFeatures is bpf.ProbeFeatures; tests replace it to fake a kernel.
var probeFeatures = bpf.ProbeFeatures

func featureCmd() *command {
	return &command{
		name:    "feature",
		summary: "what this kernel offers kflow",
		def:     "probe",
		sub:     []*command{featureProbeCmd()},
	}
}

func featureProbeCmd() *command {
	return &command{
		name:    "probe",
		summary: "probe the kernel's BPF features and say which choices kflow makes; exit status 1 when kflow cannot run",
		run: func(e *env, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("%w: unexpected argument %q", errUsage, args[0])
			}
			f := probeFeatures()
			if e.json {
				if err := e.printJSON(f); err != nil {
					return err
				}
			} else {
				renderFeatures(e.stdout, f)
			}
			if !f.CanRun {
				return &statusError{msg: "kflow cannot run here: missing " + strings.Join(f.Missing, ", "), code: exitMissingFeature}
			}
			return nil
		},
	}
}

// statusError is an error with its own exit status.
type statusError struct {
	msg  string
	code exitCode
}

func (e *statusError) Error() string { return e.msg }
func (e *statusError) Unwrap() error { return e.code }

func renderFeatures(w io.Writer, f *bpf.Features) {
	fmt.Fprintf(w, "Features:\n")
	for _, x := range f.Features {
		state := "no"
		if x.Available {
			state = "yes"
		}
		req := ""
		if x.Required {
			req = " (required)"
		}
		fmt.Fprintf(w, "  %-26s %-3s %s%s\n", x.Name, state, x.Detail, req)
		if x.Error != "" {
			fmt.Fprintf(w, "  %-26s     probe failed: %s\n", "", x.Error)
		}
	}
	c := f.Choices
	hook := string(c.Hook)
	if hook == "" {
		hook = "none"
	}
	xdp := "no"
	if c.XDP {
		xdp = "yes"
	}
	list := func(s []string) string {
		if len(s) == 0 {
			return "none"
		}
		return strings.Join(s, ", ")
	}
	fmt.Fprintf(w, "\nChoices:\n")
	fmt.Fprintf(w, "  %-26s %s\n", "hook (--hook auto)", hook)
	fmt.Fprintf(w, "  %-26s %s\n", "xdp (--hook xdp)", xdp)
	if c.XDPLimit != "" {
		fmt.Fprintf(w, "  %-26s %s\n", "", c.XDPLimit)
	}
	pin := c.Pinning
	if pin == "mount" {
		pin = "yes (the exporter mounts bpffs at /sys/fs/bpf)"
	}
	fmt.Fprintf(w, "  %-26s %s\n", "pinning", pin)
	fmt.Fprintf(w, "  %-26s %s\n", "drain", c.Drain)
	fmt.Fprintf(w, "  %-26s %s\n", "map values (--map-values)", list(c.MapValues))
	fmt.Fprintf(w, "  %-26s %s\n", "timestamps (--timestamps)", list(c.Timestamps))
	if f.CanRun {
		fmt.Fprintf(w, "\nkflow can run here.\n")
	} else {
		fmt.Fprintf(w, "\nkflow cannot run here: missing %s.\n", strings.Join(f.Missing, ", "))
	}
}

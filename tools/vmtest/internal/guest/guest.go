// SPDX-License-Identifier: Apache-2.0

// Package guest is the contract between vmtest on the host and its init
// inside the virtual machine: where the run's description lives in the
// initramfs, and the markers that frame the test's output on the console.
package guest

import (
	"fmt"
	"regexp"
	"strconv"
)

// ConfigPath is where the host puts the run's Config in the initramfs.
const ConfigPath = "/vmtest/config.json"

// Config describes one run of a test binary inside the guest.
type Config struct {
	// Nonce makes the console markers of this run unguessable by the
	// test's own output.
	Nonce string `json:"nonce"`
	// Modules are kernel module files to load, in order.
	Modules []string `json:"modules"`
	// Dir is the working directory of the test (the package directory,
	// at the same absolute path as on the host).
	Dir string `json:"dir"`
	// Args are the test binary's path and arguments.
	Args []string `json:"args"`
	// Env is the test's whole environment, KEY=VALUE.
	Env []string `json:"env"`
	// Dirs are directories to create before the test starts (output
	// directories named in its arguments).
	Dirs []string `json:"dirs,omitempty"`
}

// StartMarker is printed on its own line right before the test starts.
func StartMarker(nonce string) string { return "<<<vmtest-start " + nonce + ">>>" }

// ExitMarker is printed after the test ends, with its exit status (or
// 125 when init itself failed).
func ExitMarker(nonce string, status int) string {
	return fmt.Sprintf("<<<vmtest-exit %s %d>>>", nonce, status)
}

// ExitMarkerPrefix is what every exit marker of the run begins with.
func ExitMarkerPrefix(nonce string) string { return "<<<vmtest-exit " + nonce + " " }

var exitRe = regexp.MustCompile(`^<<<vmtest-exit [0-9a-f]+ (-?[0-9]+)>>>`)

// ParseExit returns the status of an exit marker at the start of s.
func ParseExit(s string) (int, bool) {
	m := exitRe.FindStringSubmatch(s)
	if m == nil {
		return 0, false
	}
	n, err := strconv.Atoi(m[1])
	return n, err == nil
}

// InitFailed is the status init reports when it could not run the test.
const InitFailed = 125

// SPDX-License-Identifier: Apache-2.0

package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// version is set at link time (-ldflags "-X main.version=v1.2.3").
var version = "dev"

type versionInfo struct {
	Version   string `json:"version"`
	Revision  string `json:"revision,omitempty"`
	GoVersion string `json:"go_version"`
	Platform  string `json:"platform"`
}

func currentVersion() versionInfo {
	v := versionInfo{Version: version, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				v.Revision = s.Value
			}
		}
	}
	return v
}

func versionCmd() *command {
	return &command{
		name:    "version",
		summary: "print kflow's version",
		run: func(e *env, args []string) error {
			v := currentVersion()
			if e.json {
				return e.printJSON(v)
			}
			fmt.Fprintf(e.stdout, "kflow %s", v.Version)
			if v.Revision != "" {
				fmt.Fprintf(e.stdout, " (%.12s)", v.Revision)
			}
			fmt.Fprintf(e.stdout, " %s %s\n", v.GoVersion, v.Platform)
			return nil
		},
	}
}

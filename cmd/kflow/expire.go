// SPDX-License-Identifier: Apache-2.0

package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/kflow-dev/kflow/collector/flowfile"
)

// kflow file expire: nfexpire's job on kflow's flow files (and, with
// --prefix nfcapd, on nfcapd's).

type expireFlags struct {
	maxAge  time.Duration
	maxSize string
	prefix  string
	utc     bool
}

func (f *expireFlags) register(fs *pflag.FlagSet) {
	fs.Var(ageValue{&f.maxAge}, "max-age", "remove files whose interval started longer ago than this (12h, 30d, 2w)")
	fs.StringVar(&f.maxSize, "max-size", "", "then remove the oldest files until the rest total at most `SIZE` (500M, 10G)")
	fs.StringVar(&f.prefix, "prefix", flowfile.DefaultPrefix, "remove files named with this prefix (nfcapd: nfcapd's files)")
	fs.BoolVar(&f.utc, "utc", false, "the file names are in UTC (collector run --utc) rather than local time")
}

// ageValue is a duration flag that also takes days and weeks (30d, 2w),
// as nfexpire's limits do.
type ageValue struct{ d *time.Duration }

func (v ageValue) Set(s string) error {
	d, err := parseAge(s)
	if err != nil {
		return err
	}
	*v.d = d
	return nil
}

func (v ageValue) String() string {
	if v.d == nil || *v.d == 0 {
		return "0s"
	}
	return v.d.String()
}

func (v ageValue) Type() string { return "duration" }

// parseAge parses a Go duration, or a whole number of days or weeks.
func parseAge(s string) (time.Duration, error) {
	for suffix, unit := range map[string]time.Duration{"d": 24 * time.Hour, "w": 7 * 24 * time.Hour} {
		if n, ok := strings.CutSuffix(s, suffix); ok {
			v, err := strconv.ParseUint(n, 10, 16)
			if err != nil {
				return 0, fmt.Errorf("want a duration (12h), days (30d) or weeks (2w)")
			}
			return time.Duration(v) * unit, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("want a duration (12h), days (30d) or weeks (2w)")
	}
	return d, nil
}

type expiredJSON struct {
	Path string    `json:"path"`
	Slot time.Time `json:"slot"`
	Size int64     `json:"size"`
}

func fileExpireCmd() *command {
	f := &expireFlags{}
	return &command{
		name:    "expire",
		summary: "remove the oldest finished flow files past an age or a total size (like nfexpire)",
		usage:   "DIR...",
		flags:   f.register,
		run: func(e *env, args []string) error {
			if len(args) == 0 {
				return fmt.Errorf("%w: file expire: no DIR given", errUsage)
			}
			maxBytes, err := parseSize(f.maxSize)
			if err != nil {
				return fmt.Errorf("%w: --max-size: %v", errUsage, err)
			}
			if f.maxAge == 0 && maxBytes == 0 {
				return fmt.Errorf("%w: file expire: give --max-age, --max-size or both", errUsage)
			}
			loc := time.Local
			if f.utc {
				loc = time.UTC
			}
			removed := []expiredJSON{}
			var bytes int64
			var errs []error
			for _, dir := range args {
				x, err := flowfile.Expire(dir, flowfile.ExpireOptions{MaxAge: f.maxAge, MaxBytes: maxBytes, Prefix: f.prefix, Location: loc})
				for _, r := range x {
					removed = append(removed, expiredJSON{Path: r.Path, Slot: r.Slot.UTC(), Size: r.Size})
					bytes += r.Size
				}
				if err != nil {
					errs = append(errs, err)
				}
			}
			if e.json {
				if err := e.printJSON(struct {
					Removed []expiredJSON `json:"removed"`
					Files   int           `json:"files"`
					Bytes   int64         `json:"bytes"`
				}{removed, len(removed), bytes}); err != nil {
					return err
				}
			} else {
				for _, r := range removed {
					fmt.Fprintf(e.stdout, "removed %s (%d bytes)\n", r.Path, r.Size)
				}
				fmt.Fprintf(e.stdout, "%d files removed, %d bytes\n", len(removed), bytes)
			}
			if len(errs) > 0 {
				return fmt.Errorf("file expire: %w", errors.Join(errs...))
			}
			return nil
		},
	}
}

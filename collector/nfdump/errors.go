// SPDX-License-Identifier: Apache-2.0

package nfdump

import (
	"errors"
	"fmt"
)

var (
	// ErrNotNfdump: the file does not start with nfdump's magic.
	ErrNotNfdump = errors.New("not an nfdump file")
	// ErrUnsupported: an nfdump file this reader cannot read (encrypted,
	// big endian, an unknown layout or compression).
	ErrUnsupported = errors.New("unsupported nfdump file")
	// ErrCorrupt: a length or a count that does not fit, a block that does
	// not decompress.
	ErrCorrupt = errors.New("corrupt nfdump file")
)

// Error is a file that could not be read, or not to its end: Offset is
// where the fault is (the block or structure at fault), Err says what.
type Error struct {
	Path   string
	Offset int64
	Err    error
}

func (e *Error) Error() string {
	return fmt.Sprintf("nfdump file %s: offset %d: %v", e.Path, e.Offset, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

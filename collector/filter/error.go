// SPDX-License-Identifier: Apache-2.0

package filter

import (
	"errors"
	"fmt"
	"strings"
)

// ErrSyntax is wrapped by every *SyntaxError.
var ErrSyntax = errors.New("filter syntax error")

// SyntaxError reports a filter that does not parse, with the position of
// the offending token.
type SyntaxError struct {
	Source string // the whole filter text
	Offset int    // byte offset of the offending token
	Line   int    // 1-based line of Offset
	Column int    // 1-based column (in bytes) of Offset
	Token  string // the offending token ("" at the end of the filter)
	Msg    string
}

// NewSyntaxError returns the error for token tok at byte offset off of
// src. Other filter languages (the exporter's capture filters) report
// their errors with it too.
func NewSyntaxError(src string, off int, tok, msg string) *SyntaxError {
	off = min(max(off, 0), len(src))
	line := 1 + strings.Count(src[:off], "\n")
	col := off - strings.LastIndexByte(src[:off], '\n')
	return &SyntaxError{Source: src, Offset: off, Line: line, Column: col, Token: tok, Msg: msg}
}

func (e *SyntaxError) Error() string {
	if e.Line > 1 || strings.Contains(e.Source, "\n") {
		return fmt.Sprintf("line %d column %d: %s", e.Line, e.Column, e.Msg)
	}
	return fmt.Sprintf("column %d: %s", e.Column, e.Msg)
}

// Unwrap makes errors.Is(err, ErrSyntax) true.
func (e *SyntaxError) Unwrap() error { return ErrSyntax }

// Caret returns the filter line holding the error and, below it, a caret
// under the offending token:
//
//	proto tcp and port 99999
//	                   ^^^^^
func (e *SyntaxError) Caret() string {
	start := strings.LastIndexByte(e.Source[:e.Offset], '\n') + 1
	end := strings.IndexByte(e.Source[e.Offset:], '\n')
	if end < 0 {
		end = len(e.Source)
	} else {
		end += e.Offset
	}
	line := strings.Map(func(r rune) rune {
		if r == '\t' {
			return ' '
		}
		return r
	}, e.Source[start:end])
	n := max(len(e.Token), 1)
	return line + "\n" + strings.Repeat(" ", e.Offset-start) + strings.Repeat("^", n)
}

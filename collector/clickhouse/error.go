// SPDX-License-Identifier: Apache-2.0

package clickhouse

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// Error is an error ClickHouse returned: the HTTP status and the
// exception in the response body.
type Error struct {
	Op      string // what kflow asked: "insert into kflow.flows", "query"
	Status  int    // HTTP status
	Code    int    // ClickHouse error code; 0 when the body carried none
	Message string // the exception's text
}

func (e *Error) Error() string {
	if e.Code == 0 {
		return fmt.Sprintf("clickhouse %s: HTTP %d: %s", e.Op, e.Status, e.Message)
	}
	return fmt.Sprintf("clickhouse %s: code %d: %s (HTTP %d)", e.Op, e.Code, e.Message, e.Status)
}

// Error codes kflow branches on.
const (
	CodeUnknownTable    = 60
	CodeNoSuchColumn    = 16
	CodeReadonly        = 164
	CodeTooManyParts    = 252
	CodeUnknownDatabase = 81
)

// exceptionRE matches both forms of ClickHouse's exception text:
//
//	Code: 47, e.displayText() = DB::Exception: Unknown identifier: x, e.what() = DB::Exception
//	Code: 47. DB::Exception: Missing columns: 'x' ... (UNKNOWN_IDENTIFIER) (version 24.8.4.13)
var exceptionRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`(?s)^Code: (\d{1,6})[.,] (?:e\.displayText\(\) = )?(?:DB::Exception: )?(.*?)(?:, e\.what\(\) = [^\n]*)?\s*$`)
})

// maxMessage bounds the message kept from an error body.
const maxMessage = 2048

// parseError builds the Error for a failed request from its status and
// body. The body is outside input: anything that is not an exception is
// kept (bounded) as the message.
func parseError(op string, status int, body []byte) *Error {
	e := &Error{Op: op, Status: status}
	text := strings.TrimSpace(string(body))
	if m := exceptionRE().FindStringSubmatch(text); m != nil {
		e.Code, _ = strconv.Atoi(m[1])
		text = strings.TrimSpace(m[2])
	}
	if len(text) > maxMessage {
		text = text[:maxMessage] + "…"
	}
	if text == "" {
		text = "no error text"
	}
	e.Message = text
	return e
}

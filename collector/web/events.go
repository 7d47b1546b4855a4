// SPDX-License-Identifier: Apache-2.0

package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/kflow-dev/kflow/collector/query"
)

// FilesJSON is the state of the newest flow files: it changes when flows
// are written.
type FilesJSON struct {
	Modified time.Time `json:"modified"`
	Size     int64     `json:"size"`
	Files    int       `json:"files"`
}

// newest returns the state of the files of the last hour (by name).
func (s *Server) newest() FilesJSON {
	now := s.cfg.Now()
	files, err := query.Files(query.Select{Paths: s.cfg.Paths, Prefix: s.cfg.Prefix,
		Window: query.Window{From: now.Add(-time.Hour), To: now}})
	var st FilesJSON
	if err != nil {
		return st
	}
	for _, f := range files {
		fi, err := os.Stat(f.Path)
		if err != nil {
			continue
		}
		st.Files++
		st.Size += fi.Size()
		if m := fi.ModTime().UTC(); m.After(st.Modified) {
			st.Modified = m
		}
	}
	return st
}

// events streams server-sent events: "files" with FilesJSON at once and
// whenever the newest files change (looked at every Limits.Poll), until
// the client goes away. The page refreshes a view that ends at "now" on
// each.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, errors.New("streaming unsupported"))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	t := time.NewTicker(s.cfg.Limits.Poll)
	defer t.Stop()
	var last FilesJSON
	for first := true; ; first = false {
		if cur := s.newest(); first || cur != last {
			b, _ := json.Marshal(cur)
			if _, err := fmt.Fprintf(w, "event: files\ndata: %s\n\n", b); err != nil {
				return
			}
			fl.Flush()
			last = cur
		}
		select {
		case <-r.Context().Done():
			return
		case <-t.C:
		}
	}
}

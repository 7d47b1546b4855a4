// SPDX-License-Identifier: Apache-2.0

package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/kflow-dev/kflow/exporter/flow"
)

// FlowsPath is where a running exporter serves its live flows (the flow
// cache) as a JSON array of flow.JSON, next to its metrics.
const FlowsPath = "/flows"

// InterfacesPath is where a running exporter serves the names of the
// interfaces it observes: a JSON array of {"index": N, "name": "eth0"}.
const InterfacesPath = "/interfaces"

// interfaceJSON is one observed interface at InterfacesPath.
type interfaceJSON struct {
	Index uint32 `json:"index"`
	Name  string `json:"name"`
}

// InterfacesHandler serves the observed interfaces' names at
// InterfacesPath.
func (a *Agent) InterfacesHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		out := []interfaceJSON{}
		for _, i := range a.Interfaces() {
			out = append(out, interfaceJSON{Index: i.Index, Name: i.Name})
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	})
}

// FetchInterfaces reads the names of the interfaces the exporter whose
// InterfacesHandler listens at addr observes, by index.
func FetchInterfaces(ctx context.Context, addr string) (map[uint32]string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+InterfacesPath, nil)
	if err != nil {
		return nil, fmt.Errorf("fetch interfaces from %q: %w", addr, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch interfaces: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch interfaces from %s: %s", addr, resp.Status)
	}
	var js []interfaceJSON
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&js); err != nil {
		return nil, fmt.Errorf("fetch interfaces from %s: decode: %w", addr, err)
	}
	out := make(map[uint32]string, len(js))
	for _, i := range js {
		out[i.Index] = i.Name
	}
	return out, nil
}

// maxFlowsBody bounds what FetchFlows reads.
const maxFlowsBody = 1 << 30

// FlowsHandler serves the agent's live flows at FlowsPath.
func (a *Agent) FlowsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		recs, err := a.Flows(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		out := make([]flow.JSON, len(recs))
		for i := range recs {
			out[i] = flow.NewJSON(&recs[i])
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	})
}

// FetchFlows reads the live flows of the exporter whose FlowsHandler
// listens at addr (host:port).
func FetchFlows(ctx context.Context, addr string) ([]flow.Record, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+FlowsPath, nil)
	if err != nil {
		return nil, fmt.Errorf("fetch flows from %q: %w", addr, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch flows: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("fetch flows from %s: %s: %s", addr, resp.Status, strings.TrimSpace(string(b)))
	}
	var js []flow.JSON
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxFlowsBody)).Decode(&js); err != nil {
		return nil, fmt.Errorf("fetch flows from %s: decode: %w", addr, err)
	}
	recs := make([]flow.Record, len(js))
	for i := range js {
		if recs[i], err = js[i].Record(); err != nil {
			return nil, fmt.Errorf("fetch flows from %s: flow %d: %w", addr, i, err)
		}
	}
	return recs, nil
}

// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/tools/synthflow/synthdir"
	"github.com/kflow-dev/kflow/tools/testenv"
)

// TestBrowser clicks through the flow explorer in headless Chromium
// (web/test/browser.mjs): home, a visualize query with a filter whose
// table must equal the API's figures, the same by unit, zoom by drag,
// back, a sankey, a series followed to its flows, a filter syntax error,
// a hostile filter, a reload, the flows of a unit and a container with
// their application column. KFLOW_SCREENSHOTS=DIR also saves a screenshot of each view
// (make screenshots).
func TestBrowser(t *testing.T) {
	node := testenv.RequireTool(t, "node")
	testenv.RequireTool(t, "chromium")
	web, err := filepath.Abs("../../web")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(web, "node_modules", "playwright-core")); err != nil {
		if os.Getenv(testenv.RequireEnv) == "1" {
			t.Fatalf("web/node_modules is missing: run npm ci in web/ (%s=1)", testenv.RequireEnv)
		}
		t.Skip("web/node_modules is missing: run npm ci in web/")
	}
	// A day of flows ending now, so that "last hour" has data.
	now := time.Now().UTC().Truncate(time.Minute)
	dir := t.TempDir()
	if _, err := synthdir.Write(dir, synthdir.Options{Seed: 11, Start: now.Add(-25 * time.Hour), Span: 25*time.Hour - 3*time.Minute,
		Flows: 30000, Wave: 0.6, Exporters: []netip.Addr{netip.MustParseAddr("198.18.255.1"), netip.MustParseAddr("198.18.255.2")},
		Cgroups: []string{"", "/system.slice/nginx.service", "/system.slice/postgresql.service", "",
			"/system.slice/docker-" + strings.Repeat("3c", 32) + ".scope"}}, false); err != nil {
		t.Fatal(err)
	}
	base := startWeb(t, "-R", dir)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute) // a hang guard
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(web, "test", "browser.mjs"))
	cmd.Dir = web
	cmd.Env = append(os.Environ(), "KFLOW_URL="+base,
		"KFLOW_FROM="+now.Add(-6*time.Hour).Format(time.RFC3339), "KFLOW_TO="+now.Add(-5*time.Minute).Format(time.RFC3339))
	if shots := os.Getenv("KFLOW_SCREENSHOTS"); shots != "" {
		cmd.Env = append(cmd.Env, "KFLOW_SCREENSHOTS="+shots)
	}
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("browser test: %v", err)
	}
}

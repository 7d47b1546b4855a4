// SPDX-License-Identifier: Apache-2.0
import { defineConfig } from 'vite';

// The page is built into dist/ (committed, embedded by web/assets.go).
export default defineConfig({
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    assetsDir: 'assets',
    modulePreload: { polyfill: false },
    chunkSizeWarningLimit: 1000,
    reportCompressedSize: false,
  },
  server: {
    // npm exec vite: proxy the API to a running kflow web.
    proxy: { '/api': 'http://127.0.0.1:8080' },
  },
});

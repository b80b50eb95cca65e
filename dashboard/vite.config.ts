//! Vite build of the dashboard. Asset paths are relative (`base: './'`) so the same `dist/` can be
//! served under `/admin/cdp/` by `cdp serve`, or from any other prefix, without a rebuild.

import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

export default defineConfig({
  base: './',
  plugins: [react()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // Recharts (under Tremor's charts) is most of the bundle; one chunk keeps serving simple.
    chunkSizeWarningLimit: 1200,
  },
});

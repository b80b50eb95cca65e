//! Vite build of the dashboard. Asset paths are relative (`base: './'`) so the same `dist/` can be
//! served under `/admin/cdp/` by `cdp serve`, or from any other prefix, without a rebuild.
//! `npm run dev` serves the source with the API, `/health` and the login page proxied to a
//! running `cdp serve` (`CDP_DEV_API`, default http://127.0.0.1:8080).

import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

const api = process.env.CDP_DEV_API || 'http://127.0.0.1:8080';

export default defineConfig({
  base: './',
  plugins: [react()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // Recharts (under Tremor's charts) is most of the bundle; one chunk keeps serving simple.
    chunkSizeWarningLimit: 1200,
  },
  server: {
    proxy: {
      '/api/cdp': api,
      '/health': api,
      '/admin/login': api,
    },
  },
});

import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

// The dashboard is built into web/dist and served by Anima at `/` (src/modules/web).
export default defineConfig({
  root: import.meta.dirname,
  base: '/',
  plugins: [react()],
  build: { outDir: 'dist', emptyOutDir: true, target: 'es2022', modulePreload: { polyfill: false } },
  server: { proxy: { '/v1': 'http://127.0.0.1:3000', '/health': 'http://127.0.0.1:3000' } },
});

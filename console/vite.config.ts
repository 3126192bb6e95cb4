import react from "@vitejs/plugin-react";
import { defineConfig } from "vitest/config";

// The console is served by `flywheel serve` from the same origin as the API (see
// flywheel/console.py). In `npm run dev`, /api is proxied to a local server on :8000.
export default defineConfig({
  plugins: [react()],
  base: "/",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: false,
    chunkSizeWarningLimit: 1500,
  },
  server: {
    proxy: { "/api": "http://127.0.0.1:8000" },
  },
  test: {
    environment: "node",
    include: ["src/**/*.test.ts"],
  },
});

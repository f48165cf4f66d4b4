/// <reference types="vitest/config" />
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

// The built bundle ships inside the Python package (kitch/webapp). Asset names carry a content
// hash, so the server can cache them forever; the build is deterministic for a given lockfile.
// KITCH_WEB_OUTDIR overrides it (scripts/check-web builds into a temp dir to compare).
const outDir =
  process.env.KITCH_WEB_OUTDIR || fileURLToPath(new URL("../kitch/webapp", import.meta.url));

export default defineConfig({
  // esbuild handles JSX directly (React 17+ automatic runtime); no React plugin needed.
  esbuild: { jsx: "automatic" },
  base: "/",
  build: {
    outDir,
    emptyOutDir: true,
    assetsDir: "assets",
    sourcemap: false,
    target: "es2020",
    chunkSizeWarningLimit: 1200,
    rollupOptions: {
      output: {
        // Vendor code changes rarely: its own chunks stay cached across app releases.
        manualChunks(id: string) {
          if (id.includes("/node_modules/hls.js/")) return "hls";
          if (id.includes("/node_modules/")) return "vendor";
          return undefined;
        },
      },
      onwarn(warning, warn) {
        // react-router ships "use client" directives, meaningless in a client-only bundle
        if (warning.code === "MODULE_LEVEL_DIRECTIVE") return;
        warn(warning);
      },
    },
  },
  server: {
    proxy: {
      "/api": "http://127.0.0.1:8000",
      "/hls": "http://127.0.0.1:8000",
      "/ws": { target: "ws://127.0.0.1:8000", ws: true },
    },
  },
  test: {
    environment: "jsdom",
    include: ["test/**/*.test.{ts,tsx}"],
    setupFiles: ["test/setup.ts"],
    restoreMocks: true,
  },
});

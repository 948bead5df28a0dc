// Two pages, built into the Python package: the console (/console) and the API docs
// (/docs). Every asset gets a content hash in its name (the front serves assets/ as
// immutable) and nothing is loaded from elsewhere at run time.
import { resolve } from "node:path";
import { defineConfig } from "vite";

export default defineConfig({
  base: "/console/",
  build: {
    outDir: resolve(__dirname, "../engine/console/static"),
    emptyOutDir: true,
    assetsDir: "assets",
    sourcemap: false,
    chunkSizeWarningLimit: 4096,
    rollupOptions: {
      input: {
        console: resolve(__dirname, "index.html"),
        docs: resolve(__dirname, "docs.html"),
      },
    },
  },
});

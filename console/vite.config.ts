// Two pages, built into the Python package: the console (/console) and the API docs
// (/docs). Every asset gets a content hash in its name (the front serves assets/ as
// immutable) and nothing is loaded from elsewhere at run time.
import { resolve } from "node:path";
import { defineConfig, type Plugin } from "vite";

// codemirror-json-schema renders schema descriptions with markdown-it and shiki; shiki
// compiles WebAssembly when it loads, which the pages' Content-Security-Policy forbids.
// Its one import of that renderer is pointed at a plain-text one (src/schemahelp.ts).
function plainSchemaHelp(): Plugin {
  return {
    name: "kimari-plain-schema-help",
    enforce: "pre",
    resolveId(source, importer) {
      if (importer?.includes("codemirror-json-schema") && /\/utils\/markdown(\.js)?$/.test(source)) {
        return resolve(__dirname, "src/schemahelp.ts");
      }
      return null;
    },
  };
}

export default defineConfig({
  base: "/console/",
  plugins: [plainSchemaHelp()],
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

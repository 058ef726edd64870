// Parse Mermaid diagrams with the real mermaid parser (the one GitHub renders with), offline.
// Input on stdin: a JSON object {name: diagram text}. Output on stdout: {name: null | "error message"}.
// Used by tests/contract/test_diagram.py; mermaid needs a DOM, jsdom supplies one.
import { JSDOM } from "jsdom";

const dom = new JSDOM("<!doctype html><html><body></body></html>");
globalThis.window = dom.window;
globalThis.document = dom.window.document;
const { default: mermaid } = await import("mermaid");
mermaid.initialize({ startOnLoad: false });

let input = "";
for await (const chunk of process.stdin) input += chunk;
const results = {};
for (const [name, text] of Object.entries(JSON.parse(input))) {
  try {
    await mermaid.parse(text);
    results[name] = null;
  } catch (error) {
    results[name] = String(error.message ?? error);
  }
}
process.stdout.write(JSON.stringify(results));

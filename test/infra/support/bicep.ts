/**
 * Just enough Bicep reading for the infra tests. No Bicep compiler can be installed here, so the
 * tests read the templates as text; these helpers only rely on the conventional layout the
 * templates keep (one `key: value` per line inside an object literal).
 */
import { readFileSync } from "node:fs";
import path from "node:path";

export const REPO_ROOT = path.resolve(__dirname, "..", "..", "..");
export const INFRA = path.join(REPO_ROOT, "infra");

export function readInfra(relative: string): string {
  return readFileSync(path.join(INFRA, relative), "utf8");
}

/** The text between the `{` that follows `anchor` and its matching `}` (strings and comments skipped). */
export function blockAfter(text: string, anchor: string | RegExp): string {
  const at = typeof anchor === "string" ? text.indexOf(anchor) : text.search(anchor);
  if (at < 0) throw new Error(`anchor ${String(anchor)} not found`);
  const open = text.indexOf("{", at);
  let depth = 0;
  let inString = false;
  for (let i = open; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === "\\") i++;
      else if (c === "'") inString = false;
      continue;
    }
    if (c === "'") inString = true;
    else if (c === "/" && text[i + 1] === "/") i = text.indexOf("\n", i) - 1;
    else if (c === "{") depth++;
    else if (c === "}" && --depth === 0) return text.slice(open + 1, i);
  }
  throw new Error(`unbalanced block after ${String(anchor)}`);
}

/** `key: value` lines at the top level of an object body (nested objects are skipped). */
export function properties(body: string): Map<string, string> {
  const out = new Map<string, string>();
  let depth = 0;
  for (const raw of body.split("\n")) {
    const line = raw.replace(/\s\/\/.*$/, "").trim();
    if (!line || line.startsWith("//")) continue;
    if (depth === 0) {
      const m = /^'?([A-Za-z_][\w.-]*)'?\s*:\s*(.*)$/.exec(line);
      if (m) out.set(m[1], m[2].trim());
    }
    depth += (line.match(/[{[]/g) ?? []).length - (line.match(/[}\]]/g) ?? []).length;
  }
  return out;
}

/** The Function App's app settings as written in infra/resources.bicep: name -> Bicep expression. */
export function bicepAppSettings(): Map<string, string> {
  const resources = readInfra("resources.bicep");
  const configBlock = blockAfter(resources, "resource appSettings 'config'");
  return properties(blockAfter(configBlock, "properties:"));
}

/** `param name type [= default]` declarations of a Bicep file: name -> default expression ('' if none). */
export function bicepParams(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of text.matchAll(/^param\s+(\w+)\s+\w+(?:\s*=\s*(.+))?$/gm)) out.set(m[1], (m[2] ?? "").trim());
  return out;
}

/** `output NAME type = ...` names of a Bicep file. */
export function bicepOutputs(text: string): string[] {
  return [...text.matchAll(/^output\s+(\w+)\s/gm)].map((m) => m[1]);
}

/** A Bicep string literal's value, or undefined for any other expression. */
export function literal(expr: string): string | undefined {
  const m = /^'((?:[^'\\]|\\.)*)'$/.exec(expr.trim());
  return m && !m[1].includes("${") ? m[1].replace(/\\'/g, "'").replace(/\\\\/g, "\\") : undefined;
}

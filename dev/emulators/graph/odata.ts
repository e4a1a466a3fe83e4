// The small part of OData query syntax the product uses against Graph: `$filter` with `eq` joined by `and`,
// `$select`, `$top` with `@odata.nextLink`, and alternate keys like `applications(uniqueName='x')`
// (Graph docs: query-parameters.md; filter-query-parameter.md; application-upsert.md).
import { GraphError } from "./errors";
import type { Json } from "./store";

export interface EqClause {
  property: string;
  value: string | null;
  /** `property in ('a','b')`: any of these (filter-query-parameter.md, "in" operator). */
  anyOf?: string[];
}

/** Parses `a eq 'x' and b eq 'y'` (also `eq null`, and `a in ('x','y')`). Anything else is an unsupported query, as Graph says. */
export function parseFilter(filter: string, filterable: string[], resource: string): EqClause[] {
  const clauses: EqClause[] = [];
  const parts = filter.split(/\s+and\s+/i);
  for (const part of parts) {
    const list = /^\s*(\w+)\s+in\s+\(\s*('(?:[^']|'')*'(?:\s*,\s*'(?:[^']|'')*')*)\s*\)\s*$/i.exec(part);
    if (list) {
      const property = filterable.find((p) => p.toLowerCase() === list[1].toLowerCase());
      if (!property) throw new GraphError(400, "Request_UnsupportedQuery", `Unsupported or invalid query filter clause specified for property '${list[1]}' of resource '${resource}'.`);
      const anyOf = [...list[2].matchAll(/'((?:[^']|'')*)'/g)].map((v) => v[1].replace(/''/g, "'"));
      clauses.push({ property, value: null, anyOf });
      continue;
    }
    const m = /^\s*(\w+)\s+eq\s+(?:'((?:[^']|'')*)'|(null))\s*$/i.exec(part);
    if (!m) throw new GraphError(400, "Request_UnsupportedQuery", `Unsupported or invalid query filter clause specified for property '${part.trim()}' of resource '${resource}'.`);
    const property = filterable.find((p) => p.toLowerCase() === m[1].toLowerCase());
    if (!property) throw new GraphError(400, "Request_UnsupportedQuery", `Unsupported or invalid query filter clause specified for property '${m[1]}' of resource '${resource}'.`);
    clauses.push({ property, value: m[3] ? null : m[2].replace(/''/g, "'") });
  }
  return clauses;
}

export function matches(object: Json, clauses: EqClause[]): boolean {
  // Directory string comparisons in $filter are case-insensitive.
  return clauses.every(({ property, value, anyOf }) => {
    const actual = object[property];
    if (anyOf) return typeof actual === "string" && anyOf.some((v) => v.toLowerCase() === actual.toLowerCase());
    if (value === null) return actual === null || actual === undefined;
    return typeof actual === "string" && actual.toLowerCase() === value.toLowerCase();
  });
}

/** `$select=a,b`: only those properties. Unknown names are a 400, as Graph does for directory objects. */
export function parseSelect(select: string | null, sample: Json, resource: string): string[] | undefined {
  if (!select) return undefined;
  const names = select.split(",").map((s) => s.trim()).filter(Boolean);
  for (const name of names)
    if (!(name in sample)) throw new GraphError(400, "Request_BadRequest", `Could not find a property named '${name}' on type 'microsoft.graph.${resource}'.`);
  return names;
}

export function project(object: Json, select: string[] | undefined): Json {
  if (!select) return object;
  const out: Json = {};
  for (const name of select) out[name] = object[name];
  return out;
}

/** `(key='value')` alternate-key syntax; `''` inside the value is an escaped quote. */
export const ALT_KEY = String.raw`\((?<key>\w+)='(?<value>(?:[^']|'')*)'\)`;
export const unquote = (value: string) => value.replace(/''/g, "'");

/**
 * HTTP trigger route templates, as the Functions host matches them (ASP.NET Core route template
 * syntax: literals, `{param}`, `{param?}`, `{param=default}`, `{param:constraint}`, `{*catchAll}`;
 * literals match case-insensitively; the default route is the function name).
 * Source: learn.microsoft.com/azure/azure-functions/functions-bindings-http-webhook-trigger#customize-the-http-endpoint
 * and learn.microsoft.com/aspnet/core/fundamentals/routing#route-constraints.
 */

export interface CompiledRoute {
  template: string;
  regex: RegExp;
  params: { name: string; constraints: string[]; optional: boolean; defaultValue?: string; catchAll: boolean }[];
  /** Higher first: literal segments outrank parameters, constrained outrank plain, optional/catch-all last. */
  precedence: number[];
}

const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

function splitSegment(seg: string): { literal?: string; param?: string }[] {
  const parts: { literal?: string; param?: string }[] = [];
  let i = 0;
  while (i < seg.length) {
    const open = seg.indexOf("{", i);
    if (open < 0) {
      parts.push({ literal: seg.slice(i) });
      break;
    }
    if (open > i) parts.push({ literal: seg.slice(i, open) });
    // Constraints like regex(...) may contain braces; balance them.
    let depth = 0;
    let j = open;
    for (; j < seg.length; j++) {
      if (seg[j] === "{") depth++;
      else if (seg[j] === "}") {
        depth--;
        if (depth === 0) break;
      }
    }
    parts.push({ param: seg.slice(open + 1, j) });
    i = j + 1;
  }
  return parts;
}

function splitConstraints(spec: string): string[] {
  const out: string[] = [];
  let cur = "";
  let depth = 0;
  for (const ch of spec) {
    if (ch === "(") depth++;
    if (ch === ")") depth--;
    if (ch === ":" && depth === 0) {
      out.push(cur);
      cur = "";
    } else cur += ch;
  }
  out.push(cur);
  return out.filter((c) => c.length > 0);
}

export function compileRoute(template: string, routePrefix: string): CompiledRoute {
  const full = [routePrefix, template].map((s) => s.replace(/^\/+|\/+$/g, "")).filter(Boolean).join("/");
  const segments = full.split("/").filter((s) => s.length > 0);
  const params: CompiledRoute["params"] = [];
  const precedence: number[] = [];
  let re = "^";
  for (const seg of segments) {
    const parts = splitSegment(seg);
    let segRe = "";
    let optionalSeg = false;
    let score = 5;
    for (const part of parts) {
      if (part.literal !== undefined) {
        segRe += escapeRe(part.literal);
        continue;
      }
      let spec = part.param ?? "";
      let catchAll = false;
      if (spec.startsWith("**")) {
        catchAll = true;
        spec = spec.slice(2);
      } else if (spec.startsWith("*")) {
        catchAll = true;
        spec = spec.slice(1);
      }
      let defaultValue: string | undefined;
      const eq = spec.indexOf("=");
      if (eq >= 0) {
        defaultValue = spec.slice(eq + 1);
        spec = spec.slice(0, eq);
      }
      let optional = false;
      if (spec.endsWith("?")) {
        optional = true;
        spec = spec.slice(0, -1);
      }
      const [name, ...constraints] = splitConstraints(spec);
      params.push({ name, constraints, optional: optional || defaultValue !== undefined || catchAll, defaultValue, catchAll });
      segRe += catchAll ? "(.*)" : "([^/]+)";
      if (optional || defaultValue !== undefined || catchAll) optionalSeg = parts.length === 1;
      score = Math.min(score, catchAll ? 1 : optional ? 2 : constraints.length > 0 ? 4 : 3);
    }
    precedence.push(score);
    re += optionalSeg ? `(?:/${segRe})?` : `/${segRe}`;
  }
  re += "/?$";
  return { template, regex: new RegExp(re, "i"), params, precedence };
}

function checkConstraint(value: string, constraint: string): boolean {
  const m = /^(\w+)(?:\((.*)\))?$/s.exec(constraint);
  if (!m) return true;
  const [, kind, argText] = m;
  const args = argText === undefined ? [] : argText.split(",").map((a) => a.trim());
  const num = Number(value);
  switch (kind.toLowerCase()) {
    case "int":
      return /^-?\d+$/.test(value) && Math.abs(num) <= 2147483648;
    case "long":
      return /^-?\d+$/.test(value);
    case "float":
    case "double":
    case "decimal":
      return value.trim() !== "" && Number.isFinite(num);
    case "bool":
      return /^(true|false)$/i.test(value);
    case "alpha":
      return /^[a-z]+$/i.test(value);
    case "guid":
      return /^\{?[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}\}?$/i.test(value);
    case "datetime":
      return !Number.isNaN(Date.parse(value));
    case "min":
      return /^-?\d+$/.test(value) && num >= Number(args[0]);
    case "max":
      return /^-?\d+$/.test(value) && num <= Number(args[0]);
    case "range":
      return /^-?\d+$/.test(value) && num >= Number(args[0]) && num <= Number(args[1]);
    case "length":
      return args.length === 2
        ? value.length >= Number(args[0]) && value.length <= Number(args[1])
        : value.length === Number(args[0]);
    case "minlength":
      return value.length >= Number(args[0]);
    case "maxlength":
      return value.length <= Number(args[0]);
    case "regex":
      return new RegExp(argText ?? "", "i").test(value);
    case "required":
      return value.length > 0;
    default:
      return true;
  }
}

/** Params when `path` (no query string, not yet decoded) matches; undefined otherwise. */
export function matchRoute(route: CompiledRoute, path: string): Record<string, string> | undefined {
  const m = route.regex.exec(path);
  if (!m) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < route.params.length; i++) {
    const p = route.params[i];
    const raw = m[i + 1];
    if (raw === undefined || raw === "") {
      if (!p.optional) return undefined;
      if (p.defaultValue !== undefined) params[p.name] = p.defaultValue;
      continue;
    }
    let value: string;
    try {
      value = decodeURIComponent(raw);
    } catch {
      return undefined;
    }
    if (!p.constraints.every((c) => checkConstraint(value, c))) return undefined;
    params[p.name] = value;
  }
  return params;
}

/** Orders routes the way the host prefers them: more specific first. */
export function compareRoutes(a: CompiledRoute, b: CompiledRoute): number {
  const n = Math.max(a.precedence.length, b.precedence.length);
  for (let i = 0; i < n; i++) {
    const x = a.precedence[i] ?? 0;
    const y = b.precedence[i] ?? 0;
    if (x !== y) return y - x;
  }
  return 0;
}

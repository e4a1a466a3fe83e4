// The OData 4 query subset Creatio clients use ($filter, $select, $top, $skip, $orderby) and body
// validation against the entity's columns. Syntax per OData 4.01 URL conventions; Creatio specifics
// from Creatio Academy "OData 4 overview" and the community notes it links (a Guid column is compared
// with an unquoted guid literal: `CaseId eq <guid>`; a quoted string is a type error).
import type { ColumnDef, EntityDef, Row } from "./schema";

export class ODataError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

type Literal = { kind: "string"; value: string } | { kind: "guid"; value: string } | { kind: "null" } | { kind: "bool"; value: boolean } | { kind: "number"; value: number };
interface Comparison {
  column: string;
  op: "eq" | "ne";
  literal: Literal;
}

const GUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
export const isGuid = (value: unknown): value is string => typeof value === "string" && GUID.test(value);

/**
 * `$filter`: comparisons `Column eq|ne literal` joined by `and` (or all by `or`), optionally in
 * parentheses. Enough for the lookups the product makes (by Id, Name, ClientId).
 */
export function parseFilter(filter: string, entity: EntityDef): (row: Row) => boolean {
  const tokens = tokenize(filter);
  let pos = 0;
  const peek = () => tokens[pos];
  const next = () => tokens[pos++];

  const comparison = (): (row: Row) => boolean => {
    if (peek() === "(") {
      next();
      const inner = expression();
      if (next() !== ")") throw new ODataError(400, "Syntax error: ')' expected in $filter.");
      return inner;
    }
    const column = next();
    const op = next()?.toLowerCase();
    const raw = next();
    if (!column || !raw || (op !== "eq" && op !== "ne")) throw new ODataError(400, `Syntax error in $filter '${filter}': only 'eq' and 'ne' comparisons are supported here.`);
    const def = columnDef(entity, column, "filter");
    const c: Comparison = { column, op, literal: parseLiteral(raw) };
    checkComparable(entity, c, def);
    return (row) => {
      const equal = equals(row[column], c.literal, def);
      return c.op === "eq" ? equal : !equal;
    };
  };

  const expression = (): (row: Row) => boolean => {
    let left = comparison();
    while (peek() && /^(and|or)$/i.test(peek()!)) {
      const joiner = next()!.toLowerCase();
      const right = comparison();
      const l = left;
      left = joiner === "and" ? (row) => l(row) && right(row) : (row) => l(row) || right(row);
    }
    return left;
  };

  const predicate = expression();
  if (pos !== tokens.length) throw new ODataError(400, `Syntax error at '${tokens[pos]}' in $filter.`);
  return predicate;
}

function tokenize(filter: string): string[] {
  const tokens: string[] = [];
  const re = /\s*('(?:[^']|'')*'|\(|\)|[^\s()]+)/g;
  let match: RegExpExecArray | null;
  while ((match = re.exec(filter)) !== null) if (match[1]) tokens.push(match[1]);
  return tokens;
}

function parseLiteral(raw: string): Literal {
  if (raw.startsWith("'")) {
    if (!raw.endsWith("'") || raw.length < 2) throw new ODataError(400, `Unterminated string literal ${raw} in $filter.`);
    return { kind: "string", value: raw.slice(1, -1).replace(/''/g, "'") };
  }
  if (GUID.test(raw)) return { kind: "guid", value: raw.toLowerCase() };
  if (raw === "null") return { kind: "null" };
  if (raw === "true" || raw === "false") return { kind: "bool", value: raw === "true" };
  if (/^-?\d+$/.test(raw)) return { kind: "number", value: Number(raw) };
  throw new ODataError(400, `Unrecognized literal '${raw}' in $filter.`);
}

function checkComparable(entity: EntityDef, c: Comparison, def: ColumnDef) {
  const expected: Record<string, Literal["kind"]> = { Guid: "guid", String: "string", Int32: "number", Boolean: "bool", DateTimeOffset: "string" };
  if (c.literal.kind === "null" || c.literal.kind === expected[def.type]) return;
  // Creatio answers 400 for a Guid column compared with a quoted string (Creatio community: "use CaseId eq <guid>").
  throw new ODataError(
    400,
    `A binary operator with incompatible types was detected. Found operand types 'Edm.${def.type}' and '${c.literal.kind}' for operator kind 'Equal' (column ${entity.name}.${c.column}).`,
  );
}

function equals(value: unknown, literal: Literal, _def: ColumnDef): boolean {
  switch (literal.kind) {
    case "null":
      return value === null || value === undefined;
    case "guid":
      return typeof value === "string" && value.toLowerCase() === literal.value;
    default:
      return value === literal.value;
  }
}

/** A column by exact name; write-only columns cannot be filtered, ordered or selected. */
export function columnDef(entity: EntityDef, column: string, use: "filter" | "select" | "orderby" | "write"): ColumnDef {
  const def = entity.columns[column];
  if (!def) throw new ODataError(400, `Could not find a property named '${column}' on type 'Terrasoft.Configuration.${entity.name}'.`);
  if (def.writeOnly && use !== "write") throw new ODataError(400, `The property '${column}' cannot be used in the ${use} query option.`);
  return def;
}

/** `$select`: the named columns (Id always included in Creatio answers only when selected, as OData does). */
export function parseSelect(select: string | null, entity: EntityDef): string[] {
  const readable = Object.keys(entity.columns).filter((c) => !entity.columns[c].writeOnly);
  if (!select) return readable;
  const columns = select.split(",").map((c) => c.trim()).filter(Boolean);
  for (const c of columns) columnDef(entity, c, "select");
  return columns;
}

export function project(row: Row, columns: string[]): Row {
  const out: Row = {};
  for (const c of columns) out[c] = row[c];
  return out;
}

export function parseOrderBy(orderby: string | null, entity: EntityDef): ((a: Row, b: Row) => number) | undefined {
  if (!orderby) return undefined;
  const keys = orderby.split(",").map((part) => {
    const [column, dir = "asc"] = part.trim().split(/\s+/);
    columnDef(entity, column, "orderby");
    return { column, sign: dir.toLowerCase() === "desc" ? -1 : 1 };
  });
  return (a, b) => {
    for (const { column, sign } of keys) {
      const x = a[column] as string | number;
      const y = b[column] as string | number;
      if (x < y) return -sign;
      if (x > y) return sign;
    }
    return 0;
  };
}

export function parseCount(raw: string | null, name: string): number | undefined {
  if (raw === null) return undefined;
  if (!/^\d+$/.test(raw)) throw new ODataError(400, `Invalid value '${raw}' for $${name}: a non-negative integer is expected.`);
  return Number(raw);
}

/** Checks a POST/PATCH body against the columns and types; returns the writable values. */
export function validateBody(body: unknown, entity: EntityDef): Row {
  if (!body || typeof body !== "object" || Array.isArray(body)) throw new ODataError(400, "The request body must be a JSON object.");
  const values: Row = {};
  for (const [column, value] of Object.entries(body as Row)) {
    if (column.startsWith("@odata.")) continue;
    const def = columnDef(entity, column, "write");
    if (def.system) continue;
    if (!typeMatches(def, value)) {
      throw new ODataError(400, `Cannot convert the literal '${JSON.stringify(value)}' to the expected type 'Edm.${def.type}' (property '${column}').`);
    }
    values[column] =
      def.type === "Guid" ? (value as string).toLowerCase() : def.type === "Int32" && typeof value === "string" ? Number(value) : value;
  }
  return values;
}

function typeMatches(def: ColumnDef, value: unknown): boolean {
  switch (def.type) {
    case "Guid":
      return isGuid(value);
    case "String":
      return typeof value === "string";
    case "Int32":
      // IEEE754Compatible=true lets 64-bit numbers travel as strings; Int32 may come either way.
      return (typeof value === "number" && Number.isInteger(value)) || (typeof value === "string" && /^-?\d+$/.test(value));
    case "Boolean":
      return typeof value === "boolean";
    case "DateTimeOffset":
      return value === null || (typeof value === "string" && !Number.isNaN(Date.parse(value)));
  }
}

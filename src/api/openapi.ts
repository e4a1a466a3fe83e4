import { z } from "zod";
import {
  checkStatusResponseSchema,
  errorResponseSchema,
  offboardedResponseSchema,
  offboardRequestSchema,
  onboardRequestSchema,
  rotationPlanSchema,
  rotateRequestSchema,
  tenantListSchema,
  tenantStatusSchema,
} from "./schemas";

/**
 * The OpenAPI 3.1 description of the HTTP API, generated from the zod schemas in ./schemas (the
 * same ones the functions validate with), so it is never written twice. zod 4's z.toJSONSchema emits
 * JSON Schema 2020-12, which is OpenAPI 3.1's schema dialect (spec.openapis.org/oas/v3.1.0,
 * "Schema Object"); schemas with a `.meta({ id })` become components. Kept rather than an OpenAPI
 * generator library: zod already emits the schemas, and what is left is the path table below.
 *
 * API_ROUTES is the route table: the HTTP functions take their `route`, `methods` and `authLevel`
 * from it (httpTriggerFor), and test/infra/openapi.test.ts checks that the app registers exactly
 * these routes.
 */

export type HttpMethod = "GET" | "POST" | "DELETE";

export interface ApiRoute {
  method: HttpMethod;
  /** Route as the Functions host takes it (no /api prefix; `{host}` is a route parameter). */
  route: string;
  operationId: string;
  summary: string;
  description?: string;
  requestBody?: z.ZodType;
  /** The body may be left out entirely (rotate takes defaults). */
  requestBodyOptional?: boolean;
  responses: Record<string, { description: string; schema?: z.ZodType; location?: boolean }>;
  /** false: anonymous (no function key). */
  secured?: boolean;
  /** Query parameters, each optional. */
  query?: { name: string; description: string; enum?: string[] }[];
}

const badRequest = { description: "Invalid request: `errors` lists each field path and problem.", schema: errorResponseSchema };
const unauthorized = { description: "Missing or wrong function key." };
const notFound = { description: "No managed site with that host.", schema: errorResponseSchema };
const keyVaultUnavailable = {
  description: "Key Vault could not be read (retry later), or the app settings are invalid (`error` starts with `Invalid app settings:` and names them; fix them in the Function App).",
  schema: errorResponseSchema,
};
const tooLarge = { description: "The body is larger than 64 KiB.", schema: errorResponseSchema };
const conflict = { description: "An orchestration for that site is already running; `instanceId` names it.", schema: errorResponseSchema };

/** What every route that starts an orchestration answers: 202 with the status URLs, or why not. */
const startsOrchestration = {
  "202": { description: "Started; follow statusQueryGetUri (also in Location).", schema: checkStatusResponseSchema, location: true },
  "400": badRequest,
  "401": unauthorized,
  "413": tooLarge,
  "409": conflict,
  "503": keyVaultUnavailable,
};

/**
 * Every route the app serves under /api. The app must register exactly these (test/infra/openapi.test.ts).
 */
export const API_ROUTES: readonly ApiRoute[] = [
  {
    method: "POST",
    route: "tenants",
    operationId: "onboardTenant",
    summary: "Onboard a Creatio site",
    description:
      "Starts the onboardTenant orchestration: app registration, permissions, admin consent, client secret in Key Vault, Creatio settings. The instance id is derived from the site host.",
    requestBody: onboardRequestSchema,
    responses: startsOrchestration,
  },
  {
    method: "GET",
    route: "tenants",
    operationId: "listTenants",
    summary: "List managed sites",
    description:
      "Every site that has a client secret in Key Vault, from the secrets' tags (values are never read). Offboarded sites only with ?include=offboarded (from the vault's deleted secrets).",
    query: [{ name: "include", description: "offboarded: also list offboarded sites (state offboarded).", enum: ["offboarded"] }],
    responses: {
      "200": { description: "Managed sites.", schema: tenantListSchema },
      "400": { description: "`include` is not `offboarded`.", schema: errorResponseSchema },
      "401": unauthorized,
      "503": keyVaultUnavailable,
    },
  },
  {
    method: "GET",
    route: "tenants/{host}",
    operationId: "getTenant",
    summary: "Status of one site",
    description: "Key Vault tags and the onboarding orchestration's status. Never contains a secret value.",
    responses: {
      "200": { description: "Status.", schema: tenantStatusSchema },
      "400": { description: "The host is not a valid site host.", schema: errorResponseSchema },
      "401": unauthorized,
      "404": notFound,
      "503": keyVaultUnavailable,
    },
  },
  {
    method: "DELETE",
    route: "tenants/{host}",
    operationId: "offboardTenant",
    summary: "Offboard a site",
    description:
      "Starts the offboardTenant orchestration (offboard-<host>): unlinks Creatio's Office 365 mail server and deletes our OAuth application row in Creatio (only while it holds this site's client id), removes the app id from the tenant's EwsAllowedAppIDs (EWS_ACCESS=manage), deletes the app registration (restorable in Entra for 30 days) and soft-deletes the site's Key Vault secret (recoverable for the vault's retention). This disconnects every user's Office 365 mailbox in that Creatio. The body must repeat the host. Resumes a failed offboarding; a site already offboarded answers 200 and nothing is done.",
    requestBody: offboardRequestSchema,
    responses: {
      ...startsOrchestration,
      "200": { description: "Already offboarded: nothing was done; `message` says when and how to restore.", schema: offboardedResponseSchema },
      "400": { description: "The host is invalid, or `confirm` is missing or not the host (`errors` names the field).", schema: errorResponseSchema },
      "404": notFound,
    },
  },
  {
    method: "GET",
    route: "rotation-plan",
    operationId: "getRotationPlan",
    summary: "What the next rotation sweep would do",
    description:
      "Every managed site (offboarded ones left out), whether the next sweep rotates it and why, the expiry of the secret Creatio holds and when it falls due, by the sweep's own rule; and the last sweep's outcome. Starts nothing.",
    responses: { "200": { description: "The plan.", schema: rotationPlanSchema }, "401": unauthorized, "503": keyVaultUnavailable },
  },
  {
    method: "POST",
    route: "tenants/{host}/rotate",
    operationId: "rotateTenantSecret",
    summary: "Rotate a site's client secret now",
    description:
      "Starts the rotateSecret orchestration (e.g. after a suspected leak): new secret, Key Vault version, Creatio update, then the old secret is removed after the grace period (`gracePeriodHours`, default OLD_SECRET_GRACE_HOURS; 0 removes it as soon as Creatio has the new one).",
    requestBody: rotateRequestSchema,
    requestBodyOptional: true,
    responses: { ...startsOrchestration, "404": notFound },
  },
  {
    method: "GET",
    route: "consent/callback",
    operationId: "adminConsentCallback",
    summary: "Where Entra sends a customer's administrator after admin consent",
    description:
      "Anonymous, because an administrator's browser lands here (learn.microsoft.com/entra/identity-platform/v2-admin-consent). It only wakes the onboarding whose single-use `state` it carries, when that onboarding waits for consent in the named tenant; it starts and changes nothing else. Answers a small HTML page.",
    secured: false,
    query: [
      { name: "state", description: "The state the onboarding put in its adminConsentUrl." },
      { name: "admin_consent", description: "True when the administrator consented." },
      { name: "tenant", description: "The tenant the consent was given in." },
      { name: "error", description: "Set by Entra when consent was declined or failed." },
      { name: "error_description", description: "Entra's explanation of the error." },
    ],
    responses: {
      "200": { description: "HTML: consent recorded, the onboarding continues; or the decline recorded, the onboarding fails naming it." },
      "400": { description: "HTML: the answer is refused (unknown, used or expired state, another tenant); nothing was raised." },
    },
  },
  {
    method: "GET",
    route: "openapi.json",
    operationId: "getOpenApiDocument",
    summary: "This OpenAPI document",
    description: "Anonymous: it describes the API and holds no data.",
    secured: false,
    responses: { "200": { description: "OpenAPI 3.1 document." } },
  },
];

type JsonSchema = Record<string, unknown>;

const COMPONENT_REF = "#/components/schemas/";

/** Component schemas of every `.meta({ id })` schema, as request (input) or response (output) types. */
function componentSchemas(io: "input" | "output"): Record<string, JsonSchema> {
  const { schemas } = z.toJSONSchema(z.globalRegistry, { io, uri: (id) => `${COMPONENT_REF}${id}`, unrepresentable: "any" });
  const out: Record<string, JsonSchema> = {};
  for (const [id, schema] of Object.entries(schemas)) {
    // Inside an OpenAPI document the dialect is implied and a fragment $id is not allowed.
    const { $schema: _schema, $id: _id, ...rest } = schema as JsonSchema;
    out[id] = rest;
  }
  return out;
}

function idOf(schema: z.ZodType): string {
  const id = z.globalRegistry.get(schema)?.id;
  if (typeof id !== "string") throw new Error("API schemas need .meta({ id }) to become OpenAPI components");
  return id;
}

/** Names of the components a schema refers to, transitively. */
function collectRefs(schema: unknown, all: Record<string, JsonSchema>, into: Set<string>): void {
  if (Array.isArray(schema)) return schema.forEach((s) => collectRefs(s, all, into));
  if (!schema || typeof schema !== "object") return;
  for (const [key, value] of Object.entries(schema)) {
    if (key === "$ref" && typeof value === "string" && value.startsWith(COMPONENT_REF)) {
      const name = value.slice(COMPONENT_REF.length);
      if (!into.has(name)) {
        into.add(name);
        collectRefs(all[name], all, into);
      }
    } else collectRefs(value, all, into);
  }
}

/** What `app.http` takes from the table for one operation: its route, method and auth level. */
export function httpTriggerFor(operationId: string): { route: string; methods: HttpMethod[]; authLevel: "anonymous" | "function" } {
  const entry = API_ROUTES.find((r) => r.operationId === operationId);
  if (!entry) throw new Error(`No route ${operationId} in API_ROUTES`);
  return { route: entry.route, methods: [entry.method], authLevel: entry.secured === false ? "anonymous" : "function" };
}

/** `tenants/{host}` → `/api/tenants/{host}` (host.json extensions.http.routePrefix is "api"). */
export function openApiPath(route: string, routePrefix = "api"): string {
  return `/${[routePrefix, route].filter(Boolean).join("/")}`;
}

export function buildOpenApiDocument(options: { version?: string } = {}): Record<string, unknown> {
  const output = componentSchemas("output");
  const input = componentSchemas("input");
  const components: Record<string, JsonSchema> = {};
  const use = (name: string, from: Record<string, JsonSchema>) => {
    const names = new Set([name]);
    collectRefs(from[name], from, names);
    for (const n of names) {
      if (components[n] && JSON.stringify(components[n]) !== JSON.stringify(from[n])) {
        throw new Error(`schema ${n} differs between request and response; give the request variant its own id`);
      }
      components[n] = from[n];
    }
    return { $ref: `${COMPONENT_REF}${name}` };
  };

  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of API_ROUTES) {
    const params = [...r.route.matchAll(/\{(\w+)\}/g)].map(([, name]) => ({
      name,
      in: "path",
      required: true,
      description: name === "host" ? "Site key: the Creatio site's lower-cased host, e.g. acme.creatio.com." : undefined,
      schema: { type: "string" },
    }));
    const responses: Record<string, unknown> = {};
    for (const [status, res] of Object.entries(r.responses)) {
      responses[status] = {
        description: res.description,
        ...(res.location
          ? { headers: { Location: { description: "Status URL of the orchestration (statusQueryGetUri).", schema: { type: "string", format: "uri" } } } }
          : {}),
        ...(res.schema
          ? { content: { "application/json": { schema: use(idOf(res.schema), output) } } }
          : r.operationId === "getOpenApiDocument"
            ? { content: { "application/json": { schema: { type: "object" } } } }
            : {}),
      };
    }
    const operation: Record<string, unknown> = {
      operationId: r.operationId,
      summary: r.summary,
      ...(r.description ? { description: r.description } : {}),
      tags: [r.route.startsWith("tenants") || r.route === "rotation-plan" ? "tenants" : "meta"],
      ...(params.length || r.query?.length
        ? {
            parameters: [
              ...params.map((p) => JSON.parse(JSON.stringify(p))),
              ...(r.query ?? []).map((q) => ({ name: q.name, in: "query", required: false, description: q.description, schema: { type: "string", ...(q.enum ? { enum: q.enum } : {}) } })),
            ],
          }
        : {}),
      ...(r.requestBody
        ? { requestBody: { required: !r.requestBodyOptional, content: { "application/json": { schema: use(idOf(r.requestBody), input) } } } }
        : {}),
      responses,
      ...(r.secured === false ? { security: [] } : {}),
    };
    (paths[openApiPath(r.route)] ??= {})[r.method.toLowerCase()] = operation;
  }

  return {
    openapi: "3.1.0",
    info: {
      title: "creatio-o365-oauth",
      version: options.version ?? "0.1.0",
      description:
        "Registers the Entra ID application Creatio needs for Office 365 mail and calendar sync, keeps its client secret in Azure Key Vault and rotates it before it expires. Calls need a function key (x-functions-key header or code query parameter) unless stated otherwise.",
    },
    servers: [{ url: "/", description: "The Function App (https://<app>.azurewebsites.net) or the local host (http://localhost:7071)." }],
    tags: [
      { name: "tenants", description: "Managed Creatio sites." },
      { name: "meta", description: "About the API." },
    ],
    security: [{ functionKeyHeader: [] }, { functionKeyQuery: [] }],
    paths,
    components: {
      schemas: Object.fromEntries(Object.entries(components).sort(([a], [b]) => a.localeCompare(b))),
      securitySchemes: {
        functionKeyHeader: { type: "apiKey", in: "header", name: "x-functions-key", description: "Azure Functions function or host key." },
        functionKeyQuery: { type: "apiKey", in: "query", name: "code", description: "Azure Functions function or host key." },
      },
    },
  };
}

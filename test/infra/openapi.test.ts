/**
 * The OpenAPI document: valid OpenAPI 3.1 (@apidevtools/swagger-parser), identical to the checked-in
 * openapi.json (regenerate with `UPDATE_OPENAPI=1 npx tsx dev/run-tests.ts test/infra/openapi`),
 * and describing exactly the HTTP routes the compiled app registers, with their auth levels.
 */
import SwaggerParser from "@apidevtools/swagger-parser";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { buildOpenApiDocument, openApiPath } from "../../src/api/openapi";
import { REPO_ROOT } from "./support/bicep";
import { appRegistrations, type Registration } from "./support/registrations";

const CHECKED_IN = path.join(REPO_ROOT, "openapi.json");
const serialize = (doc: unknown) => `${JSON.stringify(doc, null, 2)}\n`;

type Doc = { paths: Record<string, Record<string, { security?: unknown[] }>> };

let registrations: Registration[];
beforeAll(() => {
  registrations = appRegistrations(); // dist/ from `npm run build` (npm test builds first)
});

function routePrefix(): string {
  const host = JSON.parse(readFileSync(path.join(REPO_ROOT, "host.json"), "utf8")) as { extensions?: { http?: { routePrefix?: string } } };
  return host.extensions?.http?.routePrefix ?? "api";
}

test("the generated document is valid OpenAPI 3.1", async () => {
  const api = (await SwaggerParser.validate(structuredClone(buildOpenApiDocument()) as never)) as { openapi: string };
  expect(api.openapi).toBe("3.1.0");
});

test("the validator rejects a broken document (so the check above means something)", async () => {
  const broken = structuredClone(buildOpenApiDocument()) as Doc & Record<string, unknown>;
  (broken.paths["/api/tenants"].post as Record<string, unknown>).responses = { "202": {} };
  await expect(SwaggerParser.validate(broken as never)).rejects.toThrow();
});

test("openapi.json is up to date with the zod schemas", () => {
  const generated = serialize(buildOpenApiDocument());
  if (process.env.UPDATE_OPENAPI === "1") writeFileSync(CHECKED_IN, generated);
  expect(readFileSync(CHECKED_IN, "utf8")).toBe(generated);
});

test("its paths and methods are exactly the HTTP routes the app registers", () => {
  const doc = buildOpenApiDocument() as unknown as Doc;
  const documented = Object.entries(doc.paths)
    .flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`))
    .sort();
  const registered = registrations
    .filter((r) => r.triggerType === "httptrigger")
    .flatMap((r) => ((r.trigger.methods as string[] | undefined) ?? ["GET", "POST", "PUT", "PATCH", "DELETE"]).map((m) => `${m.toUpperCase()} ${openApiPath(String(r.trigger.route ?? r.name), routePrefix())}`))
    .sort();
  expect(registered.length).toBeGreaterThan(0);
  expect(documented).toEqual(registered);
});

test("anonymous in the document exactly where the app registers authLevel anonymous", () => {
  const doc = buildOpenApiDocument() as unknown as Doc;
  for (const r of registrations.filter((x) => x.triggerType === "httptrigger")) {
    for (const m of (r.trigger.methods as string[]) ?? []) {
      const op = doc.paths[openApiPath(String(r.trigger.route), routePrefix())][m.toLowerCase()];
      const anonymousInDoc = Array.isArray(op.security) && op.security.length === 0;
      expect(`${m} ${r.trigger.route}: ${anonymousInDoc}`).toBe(`${m} ${r.trigger.route}: ${r.trigger.authLevel === "anonymous"}`);
    }
  }
});

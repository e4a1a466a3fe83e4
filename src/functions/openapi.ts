import { app } from "@azure/functions";
import { buildOpenApiDocument, httpTriggerFor } from "../api/openapi";

/**
 * GET /api/openapi.json: the OpenAPI 3.1 description of this API, built from the zod schemas.
 * Anonymous on purpose: it describes the routes and schemas (public in this repository anyway) and
 * holds no data, and client generators and API gateways can fetch it without a key (`secured: false`
 * in API_ROUTES). Every other route stays authLevel "function".
 */
let document: string | undefined;

app.http("openapi", {
  ...httpTriggerFor("getOpenApiDocument"),
  handler: async () => {
    document ??= JSON.stringify(buildOpenApiDocument(), null, 2);
    return {
      status: 200,
      headers: { "Content-Type": "application/json; charset=utf-8", "Cache-Control": "public, max-age=300" },
      body: document,
    };
  },
});

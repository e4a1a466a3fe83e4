import { app } from "@azure/functions";
import { API_ROUTES, buildOpenApiDocument } from "../api/openapi";

/**
 * GET /api/openapi.json: the OpenAPI 3.1 description of this API, built from the zod schemas.
 * Anonymous on purpose: it describes the routes and schemas (public in this repository anyway) and
 * holds no data, and client generators and API gateways can fetch it without a key. Every other
 * route stays authLevel "function".
 */
const route = API_ROUTES.find((r) => r.operationId === "getOpenApiDocument")!;

let document: string | undefined;

app.http("openapi", {
  methods: [route.method],
  route: route.route,
  authLevel: "anonymous",
  handler: async () => {
    document ??= JSON.stringify(buildOpenApiDocument(), null, 2);
    return {
      status: 200,
      headers: { "Content-Type": "application/json; charset=utf-8", "Cache-Control": "public, max-age=300" },
      body: document,
    };
  },
});

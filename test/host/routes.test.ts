/** Functions HTTP route templates (dev/host/routes.ts). */
import { compareRoutes, compileRoute, matchRoute } from "../../dev/host/routes";

test("literals, parameters and the route prefix, case-insensitively", () => {
  const r = compileRoute("tenants/{host}/rotate", "api");
  expect(matchRoute(r, "/api/tenants/acme.creatio.com/rotate")).toEqual({ host: "acme.creatio.com" });
  expect(matchRoute(r, "/API/Tenants/x/ROTATE/")).toEqual({ host: "x" });
  expect(matchRoute(r, "/api/tenants/x")).toBeUndefined();
  expect(matchRoute(r, "/tenants/x/rotate")).toBeUndefined();
});

test("optional, default and catch-all parameters; empty prefix", () => {
  const opt = compileRoute("items/{id?}", "api");
  expect(matchRoute(opt, "/api/items")).toEqual({});
  expect(matchRoute(opt, "/api/items/7")).toEqual({ id: "7" });
  const def = compileRoute("page/{n=1}", "");
  expect(matchRoute(def, "/page")).toEqual({ n: "1" });
  const all = compileRoute("files/{*path}", "api");
  expect(matchRoute(all, "/api/files/a/b/c.txt")).toEqual({ path: "a/b/c.txt" });
});

test("constraints", () => {
  const r = compileRoute("x/{id:int}/{g:guid}/{name:alpha:maxlength(3)}", "api");
  expect(matchRoute(r, "/api/x/12/0f8fad5b-d9cb-469f-a165-70867728950e/abc")).toEqual({ id: "12", g: "0f8fad5b-d9cb-469f-a165-70867728950e", name: "abc" });
  expect(matchRoute(r, "/api/x/1.5/0f8fad5b-d9cb-469f-a165-70867728950e/abc")).toBeUndefined();
  expect(matchRoute(r, "/api/x/12/not-a-guid/abc")).toBeUndefined();
  expect(matchRoute(r, "/api/x/12/0f8fad5b-d9cb-469f-a165-70867728950e/abcd")).toBeUndefined();
  const re = compileRoute("v/{code:regex(^[a-z]+\\d$)}", "api");
  expect(matchRoute(re, "/api/v/ab1")).toEqual({ code: "ab1" });
  expect(matchRoute(re, "/api/v/ab")).toBeUndefined();
});

test("a literal segment outranks a parameter at the same position", () => {
  const param = compileRoute("tenants/{host}", "api");
  const literal = compileRoute("tenants/search", "api");
  expect([param, literal].sort(compareRoutes)[0]).toBe(literal);
});

test("percent-encoded parameter values are decoded", () => {
  expect(matchRoute(compileRoute("hello/{name}", "api"), "/api/hello/Bob%20Smith")).toEqual({ name: "Bob Smith" });
});

/**
 * The local host (as a child process, the way the team runs it) serving the fixture app: HTTP
 * trigger routing, the admin endpoint firing a timer whose schedule is an app-setting expression,
 * and Event Grid delivery.
 */
import { readFileSync, existsSync } from "node:fs";
import path from "node:path";
import { spawnHost, type SpawnedHost } from "../../dev/host/spawn";
import { FIXTURE_APP, startTestAzurite, waitFor, type TestStorage } from "./helpers";

let storage: TestStorage;
let host: SpawnedHost;
let lines: string[] = [];
let outDir: string;

beforeAll(async () => {
  storage = await startTestAzurite();
  outDir = path.join(storage.dir, "out");
  host = await spawnHost({
    appDir: FIXTURE_APP,
    runTimers: false,
    env: {
      AzureWebJobsStorage: storage.azurite.connectionString,
      FIXTURE_HUB: "HttpHub",
      FIXTURE_OUT_DIR: outDir,
      TICK_SCHEDULE: "0 0 3 * * 1-5",
    },
  });
  lines = host.lines;
});

afterAll(async () => {
  await host?.stop();
  await storage?.stop();
});

describe("HTTP triggers", () => {
  test("route parameters, optional parameter, query and headers reach the function", async () => {
    const r = await fetch(`${host.url}/api/hello/Ada?q=search`, { headers: { "x-test": "header-value" } });
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toMatch(/application\/json/);
    expect(await r.json()).toEqual({ name: "Ada", greeting: null, q: "search", ua: "header-value" });

    const r2 = await fetch(`${host.url}/API/HELLO/Bob%20Smith/hi`);
    expect(r2.status).toBe(200);
    expect(await r2.json()).toMatchObject({ name: "Bob Smith", greeting: "hi" });
  });

  test("route constraints choose between routes", async () => {
    expect(await (await fetch(`${host.url}/api/items/42`)).json()).toEqual({ kind: "int", id: 42 });
    expect(await (await fetch(`${host.url}/api/items/abc`)).json()).toEqual({ kind: "alpha", name: "abc" });
    expect((await fetch(`${host.url}/api/items/4a2`)).status).toBe(404);
  });

  test("default route is the function name; body, status and headers round-trip", async () => {
    const r = await fetch(`${host.url}/api/echo`, { method: "POST", body: "hello body" });
    expect(r.status).toBe(201);
    expect(r.headers.get("x-echo-length")).toBe("10");
    expect(await r.text()).toBe("HELLO BODY");
  });

  test("wrong method and unknown routes answer 404; a throwing function answers 500", async () => {
    expect((await fetch(`${host.url}/api/echo`)).status).toBe(404);
    expect((await fetch(`${host.url}/api/nothing/here`)).status).toBe(404);
    expect((await fetch(`${host.url}/hello/Ada`)).status).toBe(404);
    expect((await fetch(`${host.url}/api/boom`)).status).toBe(500);
  });

  test("context.log lines carry timestamp, level, function name and invocation id", async () => {
    await waitFor("the log line", async () => lines.find((l) => l.includes("hello called for Ada")));
    const line = lines.find((l) => l.includes("hello called for Ada"));
    expect(line).toMatch(/^\[\d{4}-\d\d-\d\dT[^\]]+Z\] \[Information\] \[hello\] \(Id=[0-9a-f-]{36}\) hello called for Ada$/);
  });
});

describe("timer trigger", () => {
  test("the %SETTING% schedule is resolved from the environment", () => {
    expect(lines.some((l) => l.includes("Timer 'tick' schedule 0 0 3 * * 1-5"))).toBe(true);
  });

  test("POST /admin/functions/{name} fires it with a timer object and answers 202", async () => {
    const r = await fetch(`${host.url}/admin/functions/tick`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ input: "" }) });
    expect(r.status).toBe(202);
    const file = path.join(outDir, "tick.jsonl");
    const rows = await waitFor("tick to run", async () => (existsSync(file) ? readFileSync(file, "utf8").trim().split("\n") : undefined));
    expect(rows).toHaveLength(1);
    expect(JSON.parse(rows[0])).toMatchObject({ isPastDue: false, hasSchedule: true });
    expect((await fetch(`${host.url}/admin/functions/noSuchFunction`, { method: "POST", body: "{}" })).status).toBe(404);
  });
});

describe("Event Grid trigger", () => {
  const url = (): string => `${host.url}/runtime/webhooks/eventgrid?functionName=onEvent`;

  test("answers the subscription validation handshake", async () => {
    const r = await fetch(url(), {
      method: "POST",
      headers: { "aeg-event-type": "SubscriptionValidation", "content-type": "application/json" },
      body: JSON.stringify([{ id: "v1", eventType: "Microsoft.EventGrid.SubscriptionValidationEvent", data: { validationCode: "code-123" } }]),
    });
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ validationResponse: "code-123" });
  });

  test("each event of a notification invokes the function once", async () => {
    const events = [1, 2].map((i) => ({
      id: `e${i}`,
      eventType: "Microsoft.KeyVault.SecretNearExpiry",
      subject: `secret-${i}`,
      eventTime: new Date().toISOString(),
      dataVersion: "1",
      data: { ObjectName: `secret-${i}`, VaultName: "kv", EXP: 1700000000 },
    }));
    const r = await fetch(url(), { method: "POST", headers: { "aeg-event-type": "Notification", "content-type": "application/json" }, body: JSON.stringify(events) });
    expect(r.status).toBe(202);
    const rows = readFileSync(path.join(outDir, "events.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(rows).toEqual([
      { id: "e1", eventType: "Microsoft.KeyVault.SecretNearExpiry", subject: "secret-1", data: events[0].data },
      { id: "e2", eventType: "Microsoft.KeyVault.SecretNearExpiry", subject: "secret-2", data: events[1].data },
    ]);
    const unknown = await fetch(`${host.url}/runtime/webhooks/eventgrid?functionName=hello`, { method: "POST", headers: { "aeg-event-type": "Notification" }, body: "[]" });
    expect(unknown.status).toBe(404);
  });
});

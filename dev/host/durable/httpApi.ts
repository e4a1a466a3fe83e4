/**
 * The Durable Functions HTTP API under /runtime/webhooks/durabletask, which is also the
 * `rpcBaseUrl` the durable-functions 3.x DurableClient calls (durableClient/DurableClient.js):
 *   POST   orchestrators/{name}[/{instanceId}]          start (202 + check-status payload)
 *   GET    instances/{id}?showHistory&showHistoryOutput&showInput
 *   GET    instances?runtimeStatus=&createdTimeFrom=&createdTimeTo=&top=  (x-ms-continuation-token)
 *   DELETE instances/{id}                                purge one
 *   DELETE instances?createdTimeFrom=&createdTimeTo=&runtimeStatus=   purge many
 *   POST   instances/{id}/raiseEvent/{event}
 *   POST   instances/{id}/terminate?reason=
 * Reference: learn.microsoft.com/azure/azure-functions/durable/durable-functions-http-api.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { DurableEngine } from "./engine";
import { StartConflictError } from "./engine";
import { historyForApi, parseMaybe } from "./history";
import { TERMINAL, type InstanceRow } from "./store";

export const DURABLE_PREFIX = "/runtime/webhooks/durabletask";

export interface ClientBindingData {
  taskHubName: string;
  creationUrls: Record<string, string>;
  managementUrls: Record<string, string>;
  baseUrl: string;
  requiredQueryStringParameters: string;
  rpcBaseUrl: string;
  httpBaseUrl: string;
  maxGrpcMessageSizeInBytes: number;
  grpcHttpClientTimeout: string;
}

/** The durable client binding data, as the extension gives it to out-of-proc workers. */
export function clientBindingData(origin: string, hub: string, connectionName = "Storage"): ClientBindingData {
  const base = `${origin}${DURABLE_PREFIX}`;
  const qs = `taskHub=${hub}&connection=${connectionName}`;
  return {
    taskHubName: hub,
    creationUrls: {
      createNewInstancePostUri: `${base}/orchestrators/{functionName}[/{instanceId}]?${qs}`,
      createAndWaitOnNewInstancePostUri: `${base}/orchestrators/{functionName}[/{instanceId}]?timeout={timeoutInSeconds}&pollingInterval={intervalInSeconds}&${qs}`,
    },
    managementUrls: managementUrls(base, "INSTANCEID", qs),
    baseUrl: base,
    requiredQueryStringParameters: qs,
    rpcBaseUrl: `${base}/`,
    httpBaseUrl: base,
    maxGrpcMessageSizeInBytes: 2147483647,
    grpcHttpClientTimeout: "00:01:40",
  };
}

function managementUrls(base: string, id: string, qs: string): Record<string, string> {
  const i = `${base}/instances/${id}`;
  return {
    id,
    statusQueryGetUri: `${i}?${qs}`,
    sendEventPostUri: `${i}/raiseEvent/{eventName}?${qs}`,
    terminatePostUri: `${i}/terminate?reason={text}&${qs}`,
    rewindPostUri: `${i}/rewind?reason={text}&${qs}`,
    purgeHistoryDeleteUri: `${i}?${qs}`,
    restartPostUri: `${i}/restart?${qs}`,
    suspendPostUri: `${i}/suspend?reason={text}&${qs}`,
    resumePostUri: `${i}/resume?reason={text}&${qs}`,
  };
}

export function checkStatusPayload(origin: string, hub: string, instanceId: string): Record<string, string> {
  return managementUrls(`${origin}${DURABLE_PREFIX}`, encodeURIComponent(instanceId), `taskHub=${hub}&connection=Storage`);
}

function send(res: ServerResponse, status: number, body?: unknown, headers: Record<string, string> = {}): void {
  const text = body === undefined ? "" : JSON.stringify(body);
  res.writeHead(status, { ...(body === undefined ? {} : { "Content-Type": "application/json; charset=utf-8" }), ...headers });
  res.end(text);
}

export function statusJson(inst: InstanceRow, showInput: boolean): Record<string, unknown> {
  return {
    name: inst.name,
    instanceId: inst.instanceId,
    runtimeStatus: inst.status,
    input: showInput ? parseMaybe(inst.input) : null,
    customStatus: parseMaybe(inst.customStatus),
    output: parseMaybe(inst.output),
    createdTime: trimMs(inst.createdTime),
    lastUpdatedTime: trimMs(inst.lastUpdatedTime),
  };
}

// The extension prints times without fractional seconds ("2024-01-01T00:00:00Z").
const trimMs = (iso: string): string => iso.replace(/\.\d+Z$/, "Z");

export async function handleDurableApi(engine: DurableEngine, req: IncomingMessage, res: ServerResponse, url: URL, body: string, origin: string): Promise<void> {
  const hub = engine.store.hubName;
  const rest = url.pathname.slice(DURABLE_PREFIX.length).replace(/^\/+/, "");
  const parts = rest.split("/").map((p) => decodeURIComponent(p));
  const method = (req.method ?? "GET").toUpperCase();
  const q = url.searchParams;

  if (parts[0] === "orchestrators" && parts[1] && method === "POST") {
    const input = body.trim() === "" ? null : body;
    if (input !== null) {
      try {
        JSON.parse(input);
      } catch {
        return send(res, 400, { message: "The request body is not valid JSON." });
      }
    }
    let id: string;
    try {
      id = await engine.startNew(parts[1], parts[2] || undefined, input);
    } catch (e) {
      if (e instanceof StartConflictError) return send(res, 409, { message: e.message });
      return send(res, 400, { message: (e as Error).message });
    }
    const payload = checkStatusPayload(origin, hub, id);
    return send(res, 202, payload, { Location: payload.statusQueryGetUri, "Retry-After": "10" });
  }

  if (parts[0] !== "instances") return send(res, 404, { message: "Not found" });
  const id = parts[1];

  if (!id) {
    const filter = await listFilter(engine, q);
    if (method === "DELETE") {
      let n = 0;
      for (const inst of filter) if (TERMINAL.includes(inst.status)) n += await engine.purge(inst.instanceId);
      return n === 0 ? send(res, 404) : send(res, 200, { instancesDeleted: n });
    }
    if (method !== "GET") return send(res, 405);
    const top = Number(q.get("top") ?? "100") || 100;
    const token = req.headers["x-ms-continuation-token"];
    const after = typeof token === "string" && token !== "" ? Buffer.from(token, "base64").toString("utf8") : undefined;
    const sorted = filter.sort((a, b) => (a.instanceId < b.instanceId ? -1 : 1)).filter((i) => after === undefined || i.instanceId > after);
    const page = sorted.slice(0, top);
    const headers: Record<string, string> = {};
    if (sorted.length > top) headers["x-ms-continuation-token"] = Buffer.from(page[page.length - 1].instanceId).toString("base64");
    const showInput = q.get("showInput") !== "false";
    return send(res, 200, page.map((i) => statusJson(i, showInput)), headers);
  }

  const inst = await engine.store.getInstance(id);
  if (parts.length === 2) {
    if (method === "GET") {
      if (!inst) return send(res, 404, { message: `No instance with ID '${id}' found.` });
      const status = statusJson(inst, q.get("showInput") !== "false");
      if (q.get("showHistory") === "true") status.historyEvents = historyForApi(await engine.getHistory(inst), q.get("showHistoryOutput") === "true");
      const running = inst.status === "Running" || inst.status === "Pending" || inst.status === "ContinuedAsNew";
      const failedCode = q.get("returnInternalServerErrorOnFailure") === "true" ? 500 : 200;
      const code = running ? 202 : inst.status === "Failed" ? failedCode : 200;
      const loc = running ? { Location: checkStatusPayload(origin, hub, id).statusQueryGetUri, "Retry-After": "10" } : undefined;
      return send(res, code, status, loc);
    }
    if (method === "DELETE") {
      if (!inst) return send(res, 404);
      const n = await engine.purge(id);
      return send(res, 200, { instancesDeleted: n });
    }
    return send(res, 405);
  }

  if (parts[2] === "raiseEvent" && parts[3] && method === "POST") {
    const data = body.trim() === "" ? null : body;
    const r = await engine.raiseEvent(id, parts[3], data);
    return r === "ok" ? send(res, 202) : r === "notfound" ? send(res, 404, { message: `No instance with ID '${id}' found.` }) : send(res, 410, { message: `Instance '${id}' is no longer running.` });
  }
  if (parts[2] === "terminate" && method === "POST") {
    const r = await engine.terminate(id, q.get("reason") ?? "");
    return r === "ok" ? send(res, 202) : r === "notfound" ? send(res, 404, { message: `No instance with ID '${id}' found.` }) : send(res, 410, { message: `Instance '${id}' is no longer running.` });
  }
  return send(res, 501, { message: `The local host does not implement '${parts.slice(2).join("/")}'.` });
}

async function listFilter(engine: DurableEngine, q: URLSearchParams): Promise<InstanceRow[]> {
  const statuses = (q.get("runtimeStatus") ?? "")
    .split(",")
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
  const from = q.get("createdTimeFrom");
  const to = q.get("createdTimeTo");
  const prefix = q.get("instanceIdPrefix");
  return (await engine.store.listInstances()).filter(
    (i) =>
      (statuses.length === 0 || statuses.includes(i.status.toLowerCase())) &&
      (!from || Date.parse(i.createdTime) >= Date.parse(from)) &&
      (!to || Date.parse(i.createdTime) <= Date.parse(to)) &&
      (!prefix || i.instanceId.startsWith(prefix)),
  );
}

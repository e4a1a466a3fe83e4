/**
 * Event Grid webhook, as the Functions host exposes it: POST
 * /runtime/webhooks/eventgrid?functionName={name}. Header `aeg-event-type` is
 * `SubscriptionValidation` (answer {validationResponse: data.validationCode}) or `Notification`
 * (an array of Event Grid schema events, each invoking the function once); CloudEvents 1.0
 * (structured JSON, single or batch) and its OPTIONS abuse-protection handshake are accepted too.
 * Sources: learn.microsoft.com/azure/azure-functions/functions-bindings-event-grid-trigger and
 * learn.microsoft.com/azure/event-grid/webhook-event-delivery.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { errMessage } from "./env";

export interface EventGridDispatch {
  invoke(functionName: string, event: Record<string, unknown>): Promise<void>;
  exists(functionName: string): boolean;
}

function send(res: ServerResponse, status: number, body?: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { ...(body === undefined ? {} : { "Content-Type": "application/json; charset=utf-8" }), ...headers });
  res.end(body === undefined ? "" : JSON.stringify(body));
}

export async function handleEventGrid(d: EventGridDispatch, req: IncomingMessage, res: ServerResponse, url: URL, body: string): Promise<void> {
  const method = (req.method ?? "POST").toUpperCase();
  if (method === "OPTIONS") {
    const origin = req.headers["webhook-request-origin"];
    return send(res, 200, undefined, typeof origin === "string" ? { "WebHook-Allowed-Origin": origin } : {});
  }
  if (method !== "POST") return send(res, 405);
  const name = url.searchParams.get("functionName") ?? "";
  if (!d.exists(name)) return send(res, 404, { message: `No Event Grid function named '${name}'.` });
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return send(res, 400, { message: "The request body is not valid JSON." });
  }
  const events = (Array.isArray(parsed) ? parsed : [parsed]) as Record<string, unknown>[];
  const kind = String(req.headers["aeg-event-type"] ?? "");
  if (kind === "SubscriptionValidation") {
    const data = events[0]?.data as Record<string, unknown> | undefined;
    return send(res, 200, { validationResponse: data?.validationCode });
  }
  const isCloudEvent = events.every((e) => typeof e.specversion === "string");
  if (kind !== "Notification" && !isCloudEvent) return send(res, 400, { message: "Missing 'aeg-event-type: Notification' header." });
  try {
    for (const e of events) await d.invoke(name, e);
  } catch (err) {
    return send(res, 500, { message: errMessage(err) });
  }
  return send(res, 202);
}

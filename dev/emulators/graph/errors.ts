// Error bodies shaped like Microsoft Graph's: `{error:{code,message,innerError:{date,request-id,client-request-id}}}`.
// Source: microsoft-graph-docs-contrib concepts/errors.md ("Error resource type"); directory errors also carry
// `details` (e.g. NoBackingApplicationObject under Request_BadRequest, as scripts that retry it read it).
import { randomUUID } from "node:crypto";
import type { EmulatorResponse } from "../server";

export interface GraphErrorDetail {
  code: string;
  message: string;
  target?: string;
}

export function graphErrorBody(code: string, message: string, details?: GraphErrorDetail[], clientRequestId?: string): unknown {
  const requestId = randomUUID();
  return {
    error: {
      code,
      message,
      ...(details ? { details } : {}),
      innerError: {
        date: new Date().toISOString().replace(/\.\d{3}Z$/, ""),
        "request-id": requestId,
        "client-request-id": clientRequestId ?? requestId,
      },
    },
  };
}

/** A Graph error response. Thrown by handlers (see GraphError) or returned directly. */
export function graphError(status: number, code: string, message: string, details?: GraphErrorDetail[]): EmulatorResponse {
  return { status, body: graphErrorBody(code, message, details) };
}

/** Thrown inside the Graph routes; the dispatcher turns it into a Graph error response. */
export class GraphError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: GraphErrorDetail[],
  ) {
    super(message);
  }
}

export const notFound = (id: string) =>
  // Directory objects answer unknown ids with 404 Request_ResourceNotFound (application-get.md et al.).
  new GraphError(404, "Request_ResourceNotFound", `Resource '${id}' does not exist or one of its queried reference-property objects are not present.`);

export const badRequest = (message: string, details?: GraphErrorDetail[]) => new GraphError(400, "Request_BadRequest", message, details);

export const forbidden = () =>
  // What Graph answers when the token lacks the app role (permissions-reference; "Authorization_RequestDenied").
  new GraphError(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.");

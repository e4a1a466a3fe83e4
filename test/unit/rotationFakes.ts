/**
 * Fakes for the rotation unit tests: the in-memory Key Vault of ./fakes with managed sites, a
 * Graph app with passwords behind the real Graph client, and a Durable client that records starts.
 */
import { FakeSecretStore } from "./fakes";
import type { Context, Middleware } from "@microsoft/microsoft-graph-client";
import type { DurableClient } from "durable-functions";
import { InvocationContext } from "@azure/functions";
import { createGraphClient } from "../../src/clients/graph";
import type { ActivityDeps } from "../../src/activities/shared";
import { encodeSiteTags, SECRET_CONTENT_TYPE, type SiteTagsInput } from "../../src/domain/tags";
import { secretNameFor } from "../../src/domain/site";

export const NOW = new Date("2026-11-27T12:00:00.000Z");
export const DAY = 86_400_000;

/** The unit tests' in-memory Key Vault, plus managed sites as onboarding leaves them. */
export class MemoryVault extends FakeSecretStore {
  /** A managed site's secret as onboarding leaves it, and its Creatio credential bound to it. */
  site(host: string, expiresOn: Date | undefined, tags: Partial<SiteTagsInput> = {}, value = `secret-of-${host}`): string {
    const version = this.seed(secretNameFor(host), value, {
      expiresOn,
      contentType: SECRET_CONTENT_TYPE,
      tags: encodeSiteTags({
        site: host,
        appId: `app-${host}`,
        appObjectId: `obj-${host}`,
        keyId: `k1-${host}`,
        creatioCredential: "creatio-api",
        mailServerId: "4bde7ec8-061f-46a3-ab24-49f5ec9cce8b",
        creatioSyncedKeyId: `k1-${host}`,
        ...tags,
      }),
    });
    const credential = this.latest("creatio-api");
    const bound = [credential?.properties.tags?.creatioSite, host].filter(Boolean).join(" ");
    this.seed("creatio-api", JSON.stringify({ username: "Supervisor", password: "pw" }), { tags: { creatioSite: bound } });
    return version;
  }
}

export interface FakePassword {
  keyId: string;
  displayName?: string;
  startDateTime?: string;
  endDateTime?: string;
}

/** One application's passwords behind the real Graph client (its middleware chain), network replaced. */
export function fakeGraphApp(
  appObjectId: string,
  passwords: FakePassword[],
  /** Answers removePassword in place of the app (the password stays), e.g. a refused or a lying removal. */
  removeAnswer?: (keyId: string) => { status: number; body?: unknown } | undefined,
) {
  const removals: string[] = [];
  const transport: Middleware = {
    async execute(context: Context) {
      const url = new URL(typeof context.request === "string" ? context.request : context.request.url);
      const method = (context.options?.method ?? "GET").toUpperCase();
      const path = decodeURIComponent(url.pathname.replace(/^\/v1\.0/, ""));
      let status = 404;
      let body: unknown = { error: { code: "Request_ResourceNotFound", message: "not found" } };
      if (method === "GET" && path === `/applications/${appObjectId}`) {
        status = 200;
        body = { id: appObjectId, passwordCredentials: passwords };
      } else if (method === "POST" && path === `/applications/${appObjectId}/removePassword`) {
        const keyId = (JSON.parse(String(context.options?.body)) as { keyId: string }).keyId;
        const i = passwords.findIndex((p) => p.keyId === keyId);
        const forced = removeAnswer?.(keyId);
        if (forced) {
          status = forced.status;
          body = forced.body;
        } else if (i < 0) {
          status = 400;
          body = { error: { code: "InvalidValue", message: `No password credential with keyId '${keyId}'.` } };
        } else {
          passwords.splice(i, 1);
          removals.push(keyId);
          status = 204;
          body = undefined;
        }
      }
      context.response = new Response(status === 204 ? null : JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
    },
  };
  const graph = createGraphClient({
    baseUrl: "https://graph.test.example",
    credential: { getToken: async () => ({ token: "t", expiresOnTimestamp: Date.now() + 3_600_000 }) },
    transport,
    retryPolicy: { maxRetries: 0, baseDelayMs: 1, maxDelayMs: 1, sleep: async () => undefined },
  });
  return { graph, passwords, removals };
}

export function activityDeps(vault: MemoryVault, graph: ActivityDeps["graph"]): ActivityDeps {
  return {
    graph,
    secrets: vault,
    creatio: () => {
      throw new Error("no Creatio in this test");
    },
    now: () => NOW,
    sleep: async () => undefined,
    rotateDaysBeforeExpiry: 30,
  };
}

/** A Durable client that records startNew; `running` lists instance ids that are Running. */
export function fakeDurableClient(running: Set<string> = new Set()) {
  const started: { name: string; instanceId: string; input: unknown }[] = [];
  const client = {
    getStatus: async (instanceId: string) => {
      if (running.has(instanceId)) return { instanceId, runtimeStatus: "Running" };
      throw new Error(`The operation failed with an unexpected status code: 404. ${instanceId}`);
    },
    startNew: async (name: string, options: { instanceId: string; input: unknown }) => {
      if (running.has(options.instanceId)) throw new Error("The operation failed with an unexpected status code: 409. already exists");
      started.push({ name, instanceId: options.instanceId, input: options.input });
      running.add(options.instanceId);
      return options.instanceId;
    },
  };
  return { client: client as unknown as DurableClient, started, running };
}

/** An InvocationContext whose log lines are kept. */
export function recordingContext(name = "test") {
  const lines: string[] = [];
  const context = new InvocationContext({
    functionName: name,
    logHandler: (level, ...args) => lines.push(`${level}: ${args.map(String).join(" ")}`),
  });
  return { context, lines };
}

/** Parsed structured event lines (observability.logEvent) of a given name. */
export function events(lines: string[], name: string): Record<string, unknown>[] {
  return lines
    .map((l) => l.replace(/^\w+: /, ""))
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((e) => e.event === name);
}

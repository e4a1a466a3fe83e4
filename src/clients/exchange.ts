import type { TokenCredential } from "@azure/identity";
import type { Client } from "@microsoft/microsoft-graph-client";
import { tenantCredential, tenantKey } from "./credential";
import { getGraphClient } from "./graph";
import { lazyClient } from "./lazy";
import { settings } from "../settings";

/**
 * Exchange Online admin API client (docs/architecture.md, "Exchange Online"): the REST transport the
 * ExchangeOnlineManagement v3 module uses, and CIPP with it (KelvinTegelaar/CIPP-API, New-ExoRequest):
 *
 *   POST {EXCHANGE_ADMIN_URL}/adminapi/beta/{tenantId}/InvokeCommand
 *   Authorization: Bearer <token for {EXCHANGE_ADMIN_URL}/.default>
 *   X-ResponseFormat: json
 *   X-AnchorMailbox: UPN:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@<initial domain>
 *   {"CmdletInput":{"CmdletName":"Get-OrganizationConfig","Parameters":{}}}   ->   {"value":[...]}
 *
 * The token comes from the app's own credential (the one Graph uses). The caller needs the
 * application permission Exchange.ManageAsApp and an Entra directory role: without either Exchange
 * answers 401, with the app role only 403 (ExchangeAccessError). 429 and 5xx are retried here
 * a few times honouring Retry-After, then thrown as ExchangeCallError for the step's own retry.
 * The tenant's initial domain (for X-AnchorMailbox) and id come from Graph
 * `GET /organization?$select=id,verifiedDomains` (organization-get.md, Organization.Read.All).
 */

export const ANCHOR_MAILBOX = "SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}";

export interface OrganizationEwsConfig {
  /** true: only EwsAllowedAppIDs may use EWS; false: EWS is blocked; null: not set (Set-OrganizationConfig.md). */
  EwsEnabled: boolean | null;
  EwsAllowedAppIDs: string[];
}

export interface ExchangeTenant {
  tenantId: string;
  initialDomain: string;
}

export interface ExchangeAdmin {
  /** The tenant this client serves (id and initial domain), read once from its Graph /organization. */
  tenant(): Promise<ExchangeTenant>;
  getOrganizationConfig(tenant: ExchangeTenant): Promise<OrganizationEwsConfig>;
  /** Adds app ids to EwsAllowedAppIDs server side (`@{Add=...}`): a concurrent writer's ids are kept. */
  addEwsAllowedAppIds(tenant: ExchangeTenant, appIds: string[]): Promise<void>;
  /** Removes app ids from EwsAllowedAppIDs server side (`@{Remove=...}`): the other ids are kept. */
  removeEwsAllowedAppIds(tenant: ExchangeTenant, appIds: string[]): Promise<void>;
  setEwsEnabled(tenant: ExchangeTenant, enabled: boolean): Promise<void>;
}

export class ExchangeCallError extends Error {
  override name = "ExchangeCallError";
  constructor(
    readonly cmdlet: string,
    readonly status: number | undefined,
    readonly detail: string,
  ) {
    super(`Exchange Online ${cmdlet} failed${status !== undefined ? ` with ${status}` : ""}: ${detail}`);
  }
}

/** 401/403: the identity lacks Exchange.ManageAsApp (401) or a directory role (403). Not retried: only an administrator fixes it. */
export class ExchangeAccessError extends ExchangeCallError {
  override name = "ExchangeAccessError";
}

export interface ExchangeClientOptions {
  baseUrl: string;
  credential: TokenCredential;
  /** Reads the organization from Graph; tests pass a fake. */
  organization: () => Promise<{ id: string; verifiedDomains: { name: string; isInitial?: boolean }[] }>;
  fetch?: typeof fetch;
  sleep?: (ms: number) => Promise<void>;
  /** Retries of a 429/5xx/network failure inside one call. */
  maxRetries?: number;
}

const RETRYABLE = new Set([429, 500, 502, 503, 504]);

export function createExchangeClient(options: ExchangeClientOptions): ExchangeAdmin {
  const base = options.baseUrl.replace(/\/+$/, "");
  const doFetch = options.fetch ?? fetch;
  const sleep = options.sleep ?? ((ms: number) => new Promise((r) => setTimeout(r, ms)));
  const maxRetries = options.maxRetries ?? 2;
  let home: Promise<ExchangeTenant> | undefined;

  async function invoke(tenant: ExchangeTenant, cmdlet: string, parameters: Record<string, unknown>): Promise<unknown[]> {
    const body = JSON.stringify({ CmdletInput: { CmdletName: cmdlet, Parameters: parameters } });
    for (let attempt = 0; ; attempt++) {
      const token = await options.credential.getToken(`${base}/.default`);
      if (!token) throw new ExchangeCallError(cmdlet, undefined, "no access token for Exchange Online");
      let response: Response;
      try {
        response = await doFetch(`${base}/adminapi/beta/${encodeURIComponent(tenant.tenantId)}/InvokeCommand`, {
          method: "POST",
          headers: {
            Authorization: `Bearer ${token.token}`,
            "Content-Type": "application/json",
            "X-ResponseFormat": "json",
            "X-AnchorMailbox": `UPN:${ANCHOR_MAILBOX}@${tenant.initialDomain}`,
          },
          body,
        });
      } catch (error) {
        if (attempt < maxRetries) {
          await sleep(1000 * 2 ** attempt);
          continue;
        }
        throw new ExchangeCallError(cmdlet, undefined, error instanceof Error ? error.message : String(error));
      }
      const text = await response.text();
      if (response.ok) {
        const parsed = text ? (JSON.parse(text) as { value?: unknown[] }) : {};
        return Array.isArray(parsed.value) ? parsed.value : [];
      }
      const detail = errorDetail(text);
      if (response.status === 401 || response.status === 403) {
        const why =
          response.status === 401
            ? "the app's identity lacks the Exchange.ManageAsApp application permission (or its token was refused)"
            : "the app's identity has Exchange.ManageAsApp but no Entra directory role that allows this (Global Reader to check, Exchange Administrator to change)";
        throw new ExchangeAccessError(cmdlet, response.status, `${why}: ${detail}`);
      }
      if (RETRYABLE.has(response.status) && attempt < maxRetries) {
        const retryAfter = Number(response.headers.get("retry-after"));
        await sleep(Number.isFinite(retryAfter) && retryAfter > 0 ? Math.min(retryAfter * 1000, 30_000) : 1000 * 2 ** attempt);
        continue;
      }
      throw new ExchangeCallError(cmdlet, response.status, detail);
    }
  }

  return {
    tenant() {
      // The Exchange token does not depend on the organization: asked for at the same time, so the
      // first command finds it ready (docs/architecture.md, "Upstream calls per onboarding").
      if (!home) void Promise.resolve(options.credential.getToken(`${base}/.default`)).catch(() => undefined);
      home ??= options.organization().then(
        (org) => {
          const initial = org.verifiedDomains.find((d) => d.isInitial);
          if (!initial) throw new ExchangeCallError("Get-OrganizationConfig", undefined, "the organization has no initial domain (Graph /organization verifiedDomains)");
          return { tenantId: org.id, initialDomain: initial.name };
        },
        (error: unknown) => {
          home = undefined;
          throw error;
        },
      );
      return home;
    },
    async getOrganizationConfig(tenant) {
      const [config] = (await invoke(tenant, "Get-OrganizationConfig", {})) as Record<string, unknown>[];
      if (!config) throw new ExchangeCallError("Get-OrganizationConfig", 200, "the answer holds no organization");
      return { EwsEnabled: typeof config.EwsEnabled === "boolean" ? config.EwsEnabled : null, EwsAllowedAppIDs: idList(config.EwsAllowedAppIDs) };
    },
    async addEwsAllowedAppIds(tenant, appIds) {
      // A hashtable parameter on the REST transport, as CIPP sends `@{Add=...}` for multi-valued
      // properties (KelvinTegelaar/CIPP-API, e.g. Set-Mailbox EmailAddresses); the Exchange server
      // merges, so two onboardings writing at once keep each other's id. Read back by the caller.
      await invoke(tenant, "Set-OrganizationConfig", { EwsAllowedAppIDs: { "@odata.type": "#Exchange.GenericHashTable", Add: appIds } });
    },
    async removeEwsAllowedAppIds(tenant, appIds) {
      // The same hashtable form with Remove (PowerShell's `@{Remove=...}` for a multi-valued
      // property, Set-OrganizationConfig.md): only these ids leave the list. Read back by the caller.
      await invoke(tenant, "Set-OrganizationConfig", { EwsAllowedAppIDs: { "@odata.type": "#Exchange.GenericHashTable", Remove: appIds } });
    },
    async setEwsEnabled(tenant, enabled) {
      await invoke(tenant, "Set-OrganizationConfig", { EwsEnabled: enabled });
    },
  };
}

/** A multi-valued property as the REST transport returns it: an array (or null / one string). */
function idList(value: unknown): string[] {
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === "string");
  if (typeof value === "string" && value.trim()) return value.split(/[,\s]+/).filter(Boolean);
  return [];
}

function errorDetail(text: string): string {
  try {
    const body = JSON.parse(text) as { error?: { code?: string; message?: string } };
    if (body.error) return [body.error.code, body.error.message].filter(Boolean).join(": ").slice(0, 300);
  } catch {
    // not JSON
  }
  return text.slice(0, 300) || "no detail";
}

async function readOrganization(graph: Client): Promise<{ id: string; verifiedDomains: { name: string; isInitial?: boolean }[] }> {
  const answer = (await graph.api("/organization").select(["id", "verifiedDomains"]).get()) as { value?: { id: string; verifiedDomains: { name: string; isInitial?: boolean }[] }[] };
  const org = answer.value?.[0];
  if (!org) throw new ExchangeCallError("Get-OrganizationConfig", undefined, "Graph /organization returned no organization");
  return org;
}

const exchangeClients = new Map<string, ExchangeAdmin>();

/** The Exchange Online admin client of a site's tenant (home when none is named); made once per tenant, on first use (src/clients/lazy.ts). */
export function getExchangeClient(tenantId?: string | null): ExchangeAdmin {
  const key = tenantKey(tenantId);
  let client = exchangeClients.get(key);
  if (!client) {
    const baseUrl = settings().EXCHANGE_ADMIN_URL;
    client = lazyClient(() => {
      const graph = getGraphClient(tenantId);
      return createExchangeClient({ baseUrl, credential: tenantCredential(tenantId), organization: () => readOrganization(graph) });
    });
    exchangeClients.set(key, client);
  }
  return client;
}

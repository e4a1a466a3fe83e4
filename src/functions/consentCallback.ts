import type { HttpRequest, HttpResponseInit, InvocationContext } from "@azure/functions";
import * as df from "durable-functions";
import type { DurableClient, DurableOrchestrationStatus } from "durable-functions";
import { httpTriggerFor } from "../api/openapi";
import { publicMessage } from "../domain/failure";
import { instanceIdOfConsentState, sameConsentState } from "../domain/tenant";
import { EVENTS, logEvent } from "../observability";
import { ADMIN_CONSENT_EVENT, AWAITING_ADMIN_CONSENT, type AdminConsentEvent } from "../orchestrators/adminConsent";
import type { StepProgress } from "../orchestrators/steps";
import { instanceStatus, isActive } from "./startExclusive";

/**
 * GET /api/consent/callback: Entra sends a customer's administrator here after the admin consent
 * page, with `admin_consent=True`, `tenant` and `state`, or with `error` and `error_description`
 * (learn.microsoft.com/entra/identity-platform/v2-admin-consent, "Successful response" / "Error
 * response"). Anonymous, because a browser lands here: so it trusts nothing it is told. It raises
 * the one event an onboarding waits for, and only when:
 * - `state` names a running onboarding that shows it as its current consent request (unguessable,
 *   single use: the onboarding stops showing it when the event arrives);
 * - the tenant Entra names is the tenant that onboarding waits for.
 * Anything else is refused and raises nothing. The onboarding itself then asks Entra whether the
 * provisioner is let in (docs/architecture.md, "Serving several tenants"): the callback only wakes it.
 */

export interface ConsentCallbackDeps {
  /** How long to wait for the onboarding to take the event (so a reused link is refused once the page shows). */
  settleMs: number;
  sleep: (ms: number) => Promise<void>;
}

const defaultDeps = (): ConsentCallbackDeps => ({ settleMs: 15_000, sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)) });

export async function consentCallback(request: HttpRequest, client: DurableClient, context: InvocationContext, deps: ConsentCallbackDeps = defaultDeps()): Promise<HttpResponseInit> {
  const query = request.query;
  const state = query.get("state") ?? "";
  const refuse = (why: string, log: string) => {
    logEvent(context, EVENTS.adminConsentCallback, { outcome: "refused", reason: log });
    return page(400, "This consent answer was not accepted", `${why} Nothing was changed. If an onboarding is waiting, open the consent link its status shows now (GET /api/tenants/{host}, adminConsent.url).`);
  };
  const instanceId = instanceIdOfConsentState(state);
  if (!instanceId) return refuse("The link carries no consent request of this app.", "no valid state");

  let status: DurableOrchestrationStatus | undefined;
  try {
    status = await instanceStatus(client, instanceId);
  } catch (error) {
    context.error(`Reading ${instanceId} failed: ${publicMessage(error)}`);
    return page(503, "Try again in a minute", "The app could not read the onboarding's status. Reload this page in a minute; the consent itself is recorded by Entra ID.");
  }
  const waiting = awaiting(status, state);
  if (!waiting) {
    return refuse(
      "This consent request is not (or no longer) awaited: it was already used, the onboarding ended or waited too long, or the link was changed. If you consented with this link a moment ago, that answer was recorded and nothing more is needed.",
      "state not awaited",
    );
  }

  const error = query.get("error") ?? undefined;
  const consented = !error && (query.get("admin_consent") ?? "").toLowerCase() === "true";
  const tenant = query.get("tenant") ?? undefined;
  if (consented && tenant?.toLowerCase() !== waiting.tenantId.toLowerCase()) {
    return refuse(`The consent was given in tenant ${escapeHtml(tenant ?? "(none)")}, but this onboarding waits for tenant ${escapeHtml(waiting.tenantId)}: sign in as an administrator of that tenant and open the link again.`, "another tenant");
  }

  const event: AdminConsentEvent = {
    state,
    consented,
    ...(tenant ? { tenant: tenant.slice(0, 100) } : {}),
    ...(error ? { error: error.slice(0, 200) } : {}),
    ...(query.get("error_description") ? { errorDescription: (query.get("error_description") ?? "").slice(0, 500) } : {}),
  };
  await client.raiseEvent(instanceId, ADMIN_CONSENT_EVENT, event);
  logEvent(context, EVENTS.adminConsentCallback, { instanceId, outcome: consented ? "consented" : "declined", tenantId: waiting.tenantId });

  // Until the onboarding takes the event it still shows the state: wait for that, so a second use of
  // the same link, even a second later, is refused.
  for (let waited = 0; waited < deps.settleMs; waited += 250) {
    if (!awaiting(await instanceStatus(client, instanceId).catch(() => undefined), state)) break;
    await deps.sleep(250);
  }
  return consented
    ? page(200, "Consent recorded", `Thank you. The onboarding of this Creatio site in tenant ${escapeHtml(waiting.tenantId)} continues; its status (GET /api/tenants/{host}) shows the progress. You can close this page.`)
    : page(200, "Consent declined", `Entra ID reported: ${escapeHtml(event.errorDescription ?? event.error ?? "no reason")}. The onboarding stops and says so in its status; POST /api/tenants again to ask for consent once more.`);
}

/** The tenant a run waits for, when it is running and shows this very state in its consent request; else undefined. */
function awaiting(status: DurableOrchestrationStatus | undefined, state: string): { tenantId: string } | undefined {
  const progress = status && isActive(status) ? (status.customStatus as StepProgress | null | undefined) : undefined;
  if (!progress || progress.step !== AWAITING_ADMIN_CONSENT || !progress.adminConsentUrl || !progress.tenantId) return undefined;
  let shown: string | null;
  try {
    shown = new URL(progress.adminConsentUrl).searchParams.get("state");
  } catch {
    return undefined;
  }
  return shown && sameConsentState(shown, state) ? { tenantId: progress.tenantId } : undefined;
}

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(status: number, title: string, html: string): HttpResponseInit {
  return {
    status,
    headers: {
      "Content-Type": "text/html; charset=utf-8",
      "Cache-Control": "no-store",
      // The URL carries the state: never sent on as a Referer; nothing on the page runs or loads.
      "Referrer-Policy": "no-referrer",
      "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
      "X-Content-Type-Options": "nosniff",
    },
    body: `<!doctype html><html><head><meta charset="utf-8"><title>${title}</title></head><body style="font-family:sans-serif;max-width:40em;margin:3em auto"><h1>${title}</h1><p>${html}</p><p><small>creatio-o365-oauth</small></p></body></html>`,
  };
}

df.app.client.http("adminConsentCallback", {
  ...httpTriggerFor("adminConsentCallback"),
  handler: (request, client, context) => consentCallback(request, client, context),
});

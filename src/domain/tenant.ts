import { timingSafeEqual } from "node:crypto";
import { z } from "zod";

/**
 * A site's Entra tenant (docs/architecture.md, "Serving several tenants"). POST /api/tenants takes
 * it as `entraTenantId`: the tenant id, or one of its verified domains, as Entra accepts either in
 * its URLs (learn.microsoft.com/entra/identity-platform/v2-protocols-oidc, "Find your app's OpenID
 * configuration document URI"). The app keeps the id only: a domain can move between tenants.
 */

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** A DNS name of two labels or more (contoso.onmicrosoft.com, contoso.com). */
const DOMAIN = /^(?=.{4,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/i;

export const entraTenantNameSchema = z
  .string()
  .trim()
  .refine((v) => GUID.test(v) || DOMAIN.test(v), "entraTenantId must be a tenant id (a GUID) or a verified domain of the tenant, e.g. contoso.onmicrosoft.com")
  .transform((v) => v.toLowerCase());

/**
 * The admin consent request for the provisioner in a customer's tenant
 * (learn.microsoft.com/entra/identity-platform/v2-admin-consent, "Request the permissions from a
 * directory admin"): Entra shows the application permissions it requires, and sends the
 * administrator's browser back to `redirect_uri` with `admin_consent=True`, `tenant` and `state`,
 * or with `error` and `error_description`.
 */
export function adminConsentUrl(options: { authorityHost: string; tenantId: string; clientId: string; redirectUri: string; state: string }): string {
  const url = new URL(`${options.authorityHost.replace(/\/+$/, "")}/${encodeURIComponent(options.tenantId)}/adminconsent`);
  url.searchParams.set("client_id", options.clientId);
  url.searchParams.set("redirect_uri", options.redirectUri);
  url.searchParams.set("state", options.state);
  return url.toString();
}

/**
 * The `state` of a consent request: the waiting onboarding's instance id (so the callback finds
 * it) and 32 random bytes from the caller (checkTenantAccess: crypto.randomBytes), so nobody can guess it. Single use: the onboarding stops showing it as
 * soon as it receives the callback's event (src/functions/consentCallback.ts).
 */
export function consentStateFor(instanceId: string, random: Uint8Array): string {
  if (random.length !== 32) throw new Error("a consent state takes 32 random bytes");
  return `${Buffer.from(instanceId, "utf8").toString("base64url")}.${Buffer.from(random).toString("base64url")}`;
}

/** The instance id a state names, or undefined when it is not one of ours. */
export function instanceIdOfConsentState(state: string): string | undefined {
  const match = /^([A-Za-z0-9_-]{1,400})\.([A-Za-z0-9_-]{43})$/.exec(state);
  if (!match) return undefined;
  const instanceId = Buffer.from(match[1]!, "base64url").toString("utf8");
  return instanceId.startsWith("onboard-") ? instanceId : undefined;
}

/** Constant-time comparison of two states. */
export function sameConsentState(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * What a token request in a customer's tenant says about the provisioner there
 * (learn.microsoft.com/entra/identity-platform/reference-error-codes):
 * - AADSTS7000229: the client has no service principal in the tenant: nobody consented yet (what a
 *   client-credentials request of a multi-tenant app answers there, e.g. Azure/azure-sdk-for-net#46762);
 * - AADSTS65001 / 650052: consent missing for the app or for a resource it needs;
 * - AADSTS700016: the application is not found there. Its own text says this "can happen if the
 *   application has not been installed by the administrator of the tenant or consented to": treated as
 *   consent required too, with the other cause (not multi-tenant, a wrong PROVISIONER_CLIENT_ID) named,
 *   because the consent page itself then tells the administrator so;
 * - AADSTS70021 / 700213 / 700211: the federated credential does not match the managed identity's token;
 * - AADSTS90002: no such tenant.
 */
export type TenantAccessProblem = "consentRequired" | "provisionerUnknown" | "federationMismatch" | "tenantNotFound";

export function tenantAccessProblemOf(error: unknown): TenantAccessProblem | undefined {
  const text = error instanceof Error ? `${error.message} ${String((error as { errorResponse?: { errorDescription?: string } }).errorResponse?.errorDescription ?? "")}` : String(error);
  if (/AADSTS(7000229|65001|650052)\b/.test(text)) return "consentRequired";
  if (/AADSTS700016\b/.test(text)) return "provisionerUnknown";
  if (/AADSTS(70021|700211|700212|700213|700222)\b/.test(text)) return "federationMismatch";
  if (/AADSTS90002\b/.test(text)) return "tenantNotFound";
  return undefined;
}

/** The roles claim of an access token (read, not verified: the token came straight from Entra over TLS). */
export function rolesOfToken(token: string): string[] {
  try {
    const payload = JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString("utf8")) as { roles?: unknown };
    return Array.isArray(payload.roles) ? payload.roles.filter((r): r is string => typeof r === "string") : [];
  } catch {
    return [];
  }
}

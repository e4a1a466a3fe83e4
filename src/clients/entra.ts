/**
 * Entra ID's public OpenID configuration of a tenant, named by id or by a verified domain
 * (learn.microsoft.com/entra/identity-platform/v2-protocols-oidc, "Find your app's OpenID
 * configuration document URI"): its `issuer` is `https://login.microsoftonline.com/{tenant id}/v2.0`,
 * which turns a domain into the tenant's id without any credential. An unknown tenant answers 400
 * with AADSTS90002.
 */

const TENANT_IN_ISSUER = /\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\/v2\.0\/?$/i;

export class EntraUnavailableError extends Error {
  override name = "EntraUnavailableError";
}

/** The id of the tenant `name` (id or verified domain) names; undefined when Entra knows no such tenant. */
export async function resolveTenantId(authorityHost: string, name: string, fetchImpl: typeof fetch = fetch): Promise<string | undefined> {
  const url = `${authorityHost.replace(/\/+$/, "")}/${encodeURIComponent(name)}/v2.0/.well-known/openid-configuration`;
  let response: Response;
  try {
    response = await fetchImpl(url, { signal: AbortSignal.timeout(10_000) });
  } catch (error) {
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    throw new EntraUnavailableError(`Entra ID (${new URL(url).origin}) could not be reached: ${cause?.code ?? cause?.message ?? (error as Error).message}`);
  }
  const text = await response.text();
  if (response.status === 400 && /AADSTS90002/.test(text)) return undefined;
  if (!response.ok) throw new EntraUnavailableError(`Entra ID answered ${response.status} for the OpenID configuration of ${name}`);
  let issuer: unknown;
  try {
    issuer = (JSON.parse(text) as { issuer?: unknown }).issuer;
  } catch {
    throw new EntraUnavailableError(`Entra ID's OpenID configuration of ${name} is not JSON`);
  }
  const match = typeof issuer === "string" ? TENANT_IN_ISSUER.exec(issuer) : null;
  if (!match) throw new EntraUnavailableError(`Entra ID's OpenID configuration of ${name} names no tenant id in its issuer`);
  return match[1]!.toLowerCase();
}

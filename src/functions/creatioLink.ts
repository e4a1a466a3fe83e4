import { getCreatioClient, readSiteCredential } from "../clients/creatio";
import type { SecretStore } from "../clients/keyVault";
import { publicMessage, redactError } from "../domain/failure";
import { defaultIdentityServerUrlFor } from "../domain/site";
import type { CreatioCheck, SiteTags } from "../domain/tags";

/**
 * Reads, live, which application Creatio's mail server is linked to, for the status of one site
 * (docs/architecture.md, "Status tells the truth"): after a Creatio reset, a restore or a hand edit
 * the tags still say what was written, so only Creatio can say what its mail uses now. Reads only,
 * one quick attempt with a short timeout (status must answer even when Creatio does not). The
 * Creatio session is kept per site and credential, so a status costs two OData reads; a failure
 * (Creatio down, or the credential refused, which repeated could lock the account) is remembered for
 * a minute instead of being tried on every request. SecretKey is write-only in Creatio: a secret
 * typed over ours by hand cannot be seen.
 */
const FAILURE_CACHE_MS = 60_000;
const TIMEOUT_MS = 5_000;
const failures = new Map<string, { until: number; check: CreatioCheck }>();

export async function checkCreatioLink(secrets: SecretStore, tags: SiteTags, now: Date): Promise<CreatioCheck> {
  const key = [tags.site, tags.appId, tags.mailServerId, tags.creatioCredential].join(" ");
  const failed = failures.get(key);
  if (failed && failed.until > now.getTime()) return failed.check;
  const check = await readLink(secrets, tags, now);
  if (check.state === "unreachable") failures.set(key, { until: now.getTime() + FAILURE_CACHE_MS, check });
  else failures.delete(key);
  return check;
}

async function readLink(secrets: SecretStore, tags: SiteTags, now: Date): Promise<CreatioCheck> {
  const at = now.toISOString();
  let secretParts: string[] = [];
  try {
    const site = await readSiteCredential(secrets, tags.creatioCredential, tags.site);
    secretParts = site.secretParts;
    // One quick attempt per request; the session is kept with the client (getCreatioClient's cache).
    const creatio = getCreatioClient({
      origin: `https://${tags.site}`,
      credential: site.credential,
      defaultIdentityServerUrl: defaultIdentityServerUrlFor(tags.site),
      maxRetries: 0,
      timeoutMs: TIMEOUT_MS,
    });
    const link = await creatio.mailServerLink(tags.mailServerId);
    if (!link.mailServer) return { at, state: "drift", detail: `Creatio has no MailServer row ${tags.mailServerId}` };
    if (!link.application) return { at, state: "drift", detail: "the mail server is not linked to an OAuth application" };
    if (link.application.ClientId !== tags.appId) return { at, state: "drift", clientId: link.application.ClientId ?? undefined, detail: "the linked OAuth application holds another client id" };
    return { at, state: "ok", clientId: tags.appId };
  } catch (error) {
    return { at, state: "unreachable", detail: publicMessage(redactError(error, ...secretParts), 200) };
  }
}


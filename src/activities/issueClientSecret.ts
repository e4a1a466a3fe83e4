import { randomBytes } from "node:crypto";
import { z } from "zod";
import type { PasswordCredential as GraphPasswordCredential } from "@microsoft/microsoft-graph-types";
import { graphCall, isNotFound, isPasswordLifetimePolicyError, SendOnce, type Selected } from "../clients/graph";
import { isSecretNotFound } from "../clients/keyVault";
import { secretNameFor } from "../domain/site";
import { SECRET_CONTENT_TYPE, assertTagsFreeOf, decodeSiteTags, mergeSiteTags, type SiteTags } from "../domain/tags";
import { activityFields, defaultDeps, redactError, whileReplicating, type ActivityDeps } from "./shared";
import { isFreshEnough } from "../domain/rotationPlan";
import { removePassword, type AppPassword } from "./rotationPasswords";

/**
 * Step 5 (manual steps 7-8): a client secret, stored in Key Vault by the same activity that asked
 * Graph for it, so the value never enters Durable state (docs/architecture.md, "The secret never enters Durable state"). addPassword is not
 * idempotent (docs/architecture.md, "Every activity is idempotent"): each password's displayName names the orchestration instance, the
 * run and this attempt; before adding, passwords an earlier attempt left behind (ours, not the
 * one Key Vault holds nor the previous one still in use) are removed.
 *
 * Reused by rotation: `purpose: "rotate"` always issues a new secret (unless this same run
 * already stored one) and keeps the replaced keyId in the `previousKeyId` tag.
 */
export const ISSUE_CLIENT_SECRET = "issueClientSecret";

export const issueClientSecretInput = activityFields.pick({ host: true, instanceId: true, appId: true, appObjectId: true, creatioCredentialSecretName: true, mailServerId: true, tenantId: true }).extend({
  /** Stable for one orchestration run (its start time); tells this run's passwords from earlier runs'. */
  runId: z.string().min(1),
  purpose: z.enum(["onboard", "rotate"]),
  servicePrincipalId: z.string().min(1).optional(),
  secretLifetimeDays: z.number().int().min(1).max(730),
  scopes: z.array(z.string()).optional(),
  /** The site's permission profile (onboarding); a rotation leaves the recorded one as it is. */
  permissionProfile: z.string().min(1).optional(),
  /**
   * Rotation: what beginRotation read moments ago in the same run (references, never a value): the
   * Key Vault version it saw and whether that version's keyId is still a password of the app. When
   * Key Vault's current version is still this one, nothing was stored since, so the app's password
   * list is not read again (see issueClientSecret).
   */
  expected: z.object({ version: z.string().min(1), currentExists: z.boolean() }).optional(),
});
export type IssueClientSecretInput = z.infer<typeof issueClientSecretInput>;

/** A reference to the secret; never its value. */
export interface SecretReference {
  secretName: string;
  version: string;
  keyId: string;
  expiresOn: string;
  hint: string | null;
  /** true when the secret Key Vault already held was still good and is kept. */
  reused: boolean;
  /** Passwords of earlier failed attempts removed by this run. */
  removedLeftovers: string[];
}

const DISPLAY_NAME_PREFIX = "creatio-o365-oauth";

export function passwordDisplayName(instanceId: string, runId: string, attempt: string): string {
  return `${DISPLAY_NAME_PREFIX} ${instanceId} ${runId} #${attempt}`;
}

/** True when a password was made by this product for this instance (any run, any attempt). */
export function isOurPassword(credential: AppPassword, instanceId: string): boolean {
  return (credential.displayName ?? "").startsWith(`${DISPLAY_NAME_PREFIX} ${instanceId} `);
}

export async function issueClientSecret(rawInput: IssueClientSecretInput, deps: ActivityDeps = defaultDeps(rawInput)): Promise<SecretReference> {
  const input = issueClientSecretInput.parse(rawInput);
  const secretName = secretNameFor(input.host);
  const now = deps.now();
  // Key Vault is always read again: it is what makes a retried attempt find the secret an earlier
  // attempt of this run already stored (docs/architecture.md, "Every activity is idempotent").
  const stored = await readStoredSecret(deps, secretName);
  if (input.purpose === "rotate" && input.expected && stored.found?.version === input.expected.version) {
    // Rotation, and Key Vault still holds the version beginRotation saw: no attempt of this run
    // stored a secret, so there is nothing of this run to reuse, and beginRotation's read of the
    // app's passwords stands (issue 12: one read of the app per run, not two). A password an
    // earlier attempt added but could not store is left to removeStrayPasswords, which retires
    // every password that is neither current nor Creatio's later in this same run.
    return addAndStore(deps, input, secretName, stored, input.expected.currentExists, [], now);
  }
  const passwords = await readAppPasswords(deps, input.appObjectId);
  const current = stored.keyId ? passwords.find((p) => p.keyId === stored.keyId) : undefined;
  if (stored.found && current && mayReuse(input, stored.found, current, now, deps.rotateDaysBeforeExpiry)) {
    return reuseCurrent(deps, input, secretName, stored, stored.found, current, passwords, now);
  }
  const removedLeftovers = await removeLeftovers(deps, input.appObjectId, passwords, input.instanceId, stored.keep);
  return addAndStore(deps, input, secretName, stored, current !== undefined, removedLeftovers, now);
}

/** What Key Vault holds for the site now, read once (docs/architecture.md, "Key Vault is the registry"). */
interface StoredSecret {
  /** The current version, when the secret exists. */
  found?: { version: string; expiresOn?: Date; tags: Record<string, string> };
  /** The decoded tags; undefined when there are none or they do not decode (hand-edited). */
  siteTags?: SiteTags;
  /** The tags to merge into: tags that do not decode are rebuilt from the input rather than trusted. */
  baseTags: Record<string, string>;
  /** Key Vault's current keyId and the previous one, from the decoded tags. */
  keyId?: string;
  previousKeyId?: string;
  /** Passwords never removed as leftovers. */
  keep: (string | undefined)[];
}

async function readStoredSecret(deps: ActivityDeps, secretName: string): Promise<StoredSecret> {
  let found: StoredSecret["found"];
  try {
    const secret = await deps.secrets.getSecret(secretName);
    found = { version: secret.properties.version!, expiresOn: secret.properties.expiresOn, tags: secret.properties.tags ?? {} };
  } catch (error) {
    if (!isSecretNotFound(error)) throw error;
  }
  const decoded = found ? decodeSiteTags(found.tags) : undefined;
  const siteTags = decoded?.ok ? decoded.tags : undefined;
  // Never remove the password Creatio holds, whatever the other tags say (docs/architecture.md,
  // "Rotation never breaks mail sync"). Tags that do not decode (a hand-edited tag) still name the
  // keyIds Key Vault and Creatio hold: those stay protected too.
  const rawTags = found?.tags ?? {};
  const keep = [siteTags?.keyId, siteTags?.previousKeyId, siteTags?.creatioSyncedKeyId, rawTags.keyId, rawTags.previousKeyId, rawTags.creatioSyncedKeyId];
  return { found, siteTags, baseTags: decoded?.ok ? found!.tags : {}, keyId: siteTags?.keyId, previousKeyId: siteTags?.previousKeyId, keep };
}

async function readAppPasswords(deps: ActivityDeps, appObjectId: string): Promise<AppPassword[]> {
  const appPath = `/applications/${appObjectId}`;
  // An app created seconds ago can still read as 404 (replication lag, docs/architecture.md, "Microsoft Graph and Entra ID").
  const app = await whileReplicating(deps, isNotFound, () =>
    graphCall(`GET ${appPath}`, () => deps.graph.api(`${appPath}?$select=id,appId,passwordCredentials`).get() as Promise<{ passwordCredentials?: AppPassword[] }>),
  );
  return app.passwordCredentials ?? [];
}

/** When the current password's end is unknown to Graph, Key Vault's expiry stands in. */
function endOf(current: AppPassword, found: NonNullable<StoredSecret["found"]>): Date | undefined {
  return current.endDateTime ? new Date(current.endDateTime) : found.expiresOn;
}

/**
 * Reuse: onboarding keeps a live secret that is not yet due for rotation; any purpose keeps the
 * secret this very run already stored (the activity is being retried after storing it).
 */
function mayReuse(input: IssueClientSecretInput, found: NonNullable<StoredSecret["found"]>, current: AppPassword, now: Date, rotateDaysBeforeExpiry: number): boolean {
  const thisRun = (current.displayName ?? "").startsWith(`${DISPLAY_NAME_PREFIX} ${input.instanceId} ${input.runId} `);
  // Fresh enough for the lifetime asked for: a re-run after a failure delivers the secret the
  // failed run issued, even one shorter-lived than the rotation window.
  const stillGood = isFreshEnough(endOf(current, found), input.secretLifetimeDays, now, rotateDaysBeforeExpiry);
  return thisRun || (input.purpose === "onboard" && stillGood);
}

/** The site's tags for a secret whose current password is keyId. */
function siteTagsFor(input: IssueClientSecretInput, stored: StoredSecret, keyId: string, previous: string | undefined) {
  return {
    site: input.host,
    appId: input.appId,
    appObjectId: input.appObjectId,
    servicePrincipalId: input.servicePrincipalId ?? null,
    keyId,
    previousKeyId: previous ?? null,
    // Which credential and mail server the site uses change only when Creatio accepts them
    // (configureCreatio records them): a failed run never replaces the working ones.
    creatioCredential: stored.siteTags?.creatioCredential ?? input.creatioCredentialSecretName,
    mailServerId: stored.siteTags?.mailServerId ?? input.mailServerId,
    scopes: input.scopes?.join(" ") ?? undefined,
    permissionProfile: input.permissionProfile ?? undefined,
    // A site never changes tenant (POST /api/tenants refuses it): absent leaves the tag as it is.
    tenantId: input.tenantId ?? undefined,
  };
}

/** Keeps Key Vault's current version; only its tags are brought up to date. */
async function reuseCurrent(
  deps: ActivityDeps,
  input: IssueClientSecretInput,
  secretName: string,
  stored: StoredSecret,
  found: NonNullable<StoredSecret["found"]>,
  current: AppPassword,
  passwords: AppPassword[],
  now: Date,
): Promise<SecretReference> {
  const removedLeftovers = await removeLeftovers(deps, input.appObjectId, passwords, input.instanceId, stored.keep);
  const tags = mergeSiteTags(stored.baseTags, siteTagsFor(input, stored, current.keyId, stored.previousKeyId));
  if (JSON.stringify(tags) !== JSON.stringify(found.tags)) {
    // Same version, new tags: updateSecretProperties does not create a version.
    await deps.secrets.updateSecretProperties(secretName, found.version, { tags });
  }
  return {
    secretName,
    version: found.version,
    keyId: current.keyId,
    expiresOn: (endOf(current, found) ?? now).toISOString(),
    hint: current.hint ?? null,
    reused: true,
    removedLeftovers,
  };
}

/** addPassword, then the value goes straight into a new Key Vault version; a password that cannot be stored is removed. */
async function addAndStore(
  deps: ActivityDeps,
  input: IssueClientSecretInput,
  secretName: string,
  stored: StoredSecret,
  /** Key Vault's current keyId is still a password of the app. */
  currentExists: boolean,
  removedLeftovers: string[],
  now: Date,
): Promise<SecretReference> {
  const appPath = `/applications/${input.appObjectId}`;
  const endDateTime = new Date(now.getTime() + input.secretLifetimeDays * 86_400_000);
  const attempt = randomBytes(4).toString("hex");
  const addPath = `${appPath}/addPassword`;
  let added: Selected<GraphPasswordCredential, "keyId" | "secretText">;
  try {
    // Sent once: a retried POST could add a second password whose value nobody kept (docs/architecture.md, "Microsoft Graph and Entra ID").
    added = await graphCall(`POST ${addPath}`, () =>
      deps.graph
        .api(addPath)
        .middlewareOptions([new SendOnce()])
        .post({ passwordCredential: { displayName: passwordDisplayName(input.instanceId, input.runId, attempt), endDateTime: endDateTime.toISOString() } }),
    );
  } catch (error) {
    if (isPasswordLifetimePolicyError(error)) {
      throw new Error(
        `The tenant's app management policy rejects a client secret lifetime of ${input.secretLifetimeDays} days; ` +
          `onboard again with a smaller secretLifetimeDays or ask an administrator to relax the policy's passwordLifetime. ${(error as Error).message}`,
      );
    }
    throw error;
  }

  try {
    // The replaced keyId stays referenced (previousKeyId) so rotation can remove it after its grace period.
    const replaced = stored.keyId && stored.keyId !== added.keyId && currentExists ? stored.keyId : stored.previousKeyId;
    const tags = mergeSiteTags(stored.baseTags, {
      ...siteTagsFor(input, stored, added.keyId, replaced),
      rotationState: stored.siteTags?.rotationState ?? "idle",
    });
    assertTagsFreeOf(tags, added.secretText);
    const expiresOn = new Date(added.endDateTime ?? endDateTime.toISOString());
    const result = await deps.secrets.setSecret(secretName, added.secretText, {
      expiresOn,
      contentType: SECRET_CONTENT_TYPE,
      tags,
    });
    return {
      secretName,
      version: result.properties.version!,
      keyId: added.keyId,
      expiresOn: expiresOn.toISOString(),
      hint: added.hint ?? null,
      reused: false,
      removedLeftovers,
    };
  } catch (error) {
    // Not stored: the password is useless; remove it now rather than on the next attempt.
    await graphCall(`POST ${appPath}/removePassword`, () => deps.graph.api(`${appPath}/removePassword`).post({ keyId: added.keyId })).catch(() => undefined);
    throw redactError(error, added.secretText);
  }
}

/** Removes this instance's passwords that are neither in Key Vault nor the previous one still in use. */
async function removeLeftovers(
  deps: ActivityDeps,
  appObjectId: string,
  passwords: AppPassword[],
  instanceId: string,
  keep: (string | undefined)[],
): Promise<string[]> {
  const removed: string[] = [];
  for (const password of passwords) {
    if (!isOurPassword(password, instanceId) || keep.includes(password.keyId)) continue;
    if ((await removePassword(deps, appObjectId, password.keyId)) === "removed") removed.push(password.keyId);
  }
  return removed;
}

export const issueClientSecretActivity = {
  name: ISSUE_CLIENT_SECRET,
  handler: (input: unknown) => issueClientSecret(input as IssueClientSecretInput),
};

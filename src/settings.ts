import { z } from "zod";
import { BUILT_IN_PROFILES, permissionProfileSchema, type PermissionProfile } from "./domain/permissions";

/**
 * The app settings (README.md, "Deploy to Azure"). One schema, parsed once, on first use, so a
 * missing or malformed setting fails with a message that names it instead of a late `undefined`.
 * Every endpoint comes from here: the emulators are reached through settings alone
 * (docs/architecture.md, "No sandbox branches"). `npm start` checks its settings with it
 * (dev/settingsCheck.ts); in Azure a SettingsError answers 503 naming the settings
 * (src/functions/responses.ts, answeringSettingsErrors).
 */

const httpsUrl = (what: string) =>
  z
    .url({ protocol: /^https$/, error: `${what} must be an https:// URL` })
    .transform((u) => u.replace(/\/+$/, ""));

/**
 * The consent callback: https, or http on localhost, the one plain-http redirect URI Entra accepts
 * (learn.microsoft.com/entra/identity-platform/reply-url, "Localhost exceptions").
 */
const consentRedirectUri = z
  .url({ protocol: /^https?$/, error: "CONSENT_REDIRECT_URI must be an https:// URL ending in /api/consent/callback" })
  .refine((u) => new URL(u).protocol === "https:" || ["localhost", "127.0.0.1"].includes(new URL(u).hostname), "CONSENT_REDIRECT_URI must use https:// (http only for localhost)");

/** Env values are strings; accept the usual spellings of a boolean and nothing else. */
const envBoolean = z
  .enum(["true", "false", "1", "0", "yes", "no", "TRUE", "FALSE", "True", "False"], {
    error: "must be true or false",
  })
  .transform((v) => ["true", "1", "yes"].includes(v.toLowerCase()));

/** Six-field NCRONTAB (`{second} {minute} {hour} {day} {month} {day-of-week}`), as the timer trigger expects. */
const ncrontab = z
  .string()
  .trim()
  .refine((v) => v.split(/\s+/).length === 6, "must be a six-field NCRONTAB expression, e.g. 0 0 3 * * *");

/** A number written as text; the message names the rule, never the value. */
const number = () => z.coerce.number({ error: "must be a number" });

const emptyToUndefined = (v: unknown) => (typeof v === "string" && v.trim() === "" ? undefined : v);

const PROFILES_SHAPE = "a JSON array of profiles, or a JSON object of profiles by name, each {name, redirectPath?, resources: [{appId, name?, scopes: [...]}]}";

/**
 * PERMISSION_PROFILES: the operator's permission profiles beside the built-in `creatio-ews`
 * (src/domain/permissions.ts; README, "Permission profiles"). Every problem names the setting and
 * the profile and field at fault.
 */
const permissionProfiles = z.preprocess(emptyToUndefined, z.string().optional()).transform((raw, ctx): PermissionProfile[] => {
  if (raw === undefined) return [];
  const fail = (message: string) => {
    ctx.addIssue({ code: "custom", message: `PERMISSION_PROFILES ${message}` });
    return z.NEVER;
  };
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return fail(`is not JSON: set it to ${PROFILES_SHAPE}`);
  }
  let entries: { label: string; profile: unknown }[];
  if (Array.isArray(value)) entries = value.map((profile, i) => ({ label: `[${i}]`, profile }));
  else if (value && typeof value === "object") {
    entries = [];
    for (const [name, profile] of Object.entries(value)) {
      if (profile && typeof profile === "object" && !Array.isArray(profile) && "name" in profile && (profile as { name: unknown }).name !== name) return fail(`profile "${name}": its name differs from its key`);
      entries.push({ label: `"${name}"`, profile: profile && typeof profile === "object" && !Array.isArray(profile) ? { name, ...profile } : profile });
    }
  } else return fail(`must be ${PROFILES_SHAPE}`);
  const profiles: PermissionProfile[] = [];
  for (const { label, profile } of entries) {
    const parsed = permissionProfileSchema.safeParse(profile);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      const at = issue.path.length > 0 ? ` ${issue.path.join(".")}` : "";
      return fail(`profile ${label}:${at} ${issue.message}`);
    }
    if (BUILT_IN_PROFILES.some((p) => p.name === parsed.data.name) || profiles.some((p) => p.name === parsed.data.name)) {
      return fail(`profile ${label}: the name ${parsed.data.name} is ${profiles.some((p) => p.name === parsed.data.name) ? "used twice" : "built in"}; pick another`);
    }
    profiles.push(parsed.data);
  }
  return profiles;
});

export const settingsSchema = z
  .object({
  // Host storage (the Durable task hub): a connection string locally, identity-based in Azure, where
  // only AzureWebJobsStorage__accountName (+ __credential, __clientId) is set and setting the plain
  // name too would make the host read it as a connection string
  // (learn.microsoft.com/azure/azure-functions/functions-reference#connecting-to-host-storage-with-an-identity).
  AzureWebJobsStorage: z.preprocess(emptyToUndefined, z.string().optional()),
  AzureWebJobsStorage__accountName: z.preprocess(emptyToUndefined, z.string().optional()),
  KEY_VAULT_URL: httpsUrl("KEY_VAULT_URL"),
  GRAPH_BASE_URL: z.preprocess(emptyToUndefined, httpsUrl("GRAPH_BASE_URL").default("https://graph.microsoft.com")),
  AZURE_CLIENT_ID: z.preprocess(emptyToUndefined, z.string().optional()),
  AZURE_TENANT_ID: z.preprocess(emptyToUndefined, z.string().optional()),
  ROTATION_SCHEDULE: z.preprocess(emptyToUndefined, ncrontab.default("0 0 3 * * *")),
  ROTATE_DAYS_BEFORE_EXPIRY: z.preprocess(emptyToUndefined, number().int({ error: "must be a whole number" }).min(1, { error: "must be at least 1" }).max(700, { error: "must be at most 700" }).default(30)),
  // Fractions allowed so tests can use a grace period of seconds (0.001 h = 3.6 s).
  OLD_SECRET_GRACE_HOURS: z.preprocess(emptyToUndefined, number().min(0, { error: "must be at least 0" }).max(24 * 30, { error: "must be at most 720" }).default(24)),
  // How many due rotations the sweep starts at once. Starting one is a few calls to the Durable
  // extension's HTTP API; the rotations then run in parallel anyway, so this bounds the burst.
  ROTATION_SWEEP_CONCURRENCY: z.preprocess(emptyToUndefined, number().int({ error: "must be a whole number" }).min(1, { error: "must be at least 1" }).max(64, { error: "must be at most 64" }).default(8)),
  AZURE_AUTHORITY_HOST: z.preprocess(emptyToUndefined, httpsUrl("AZURE_AUTHORITY_HOST").optional()),
  AZURE_DISABLE_INSTANCE_DISCOVERY: z.preprocess(emptyToUndefined, envBoolean.default(false)),
  // The Key Vault SDK checks that a challenge's `resource` is a parent domain of the vault's host
  // (docs/architecture.md, "Azure Key Vault"). On unless this setting, named for that check, says otherwise.
  KEY_VAULT_DISABLE_CHALLENGE_VERIFICATION: z.preprocess(emptyToUndefined, envBoolean.default(false)),
  // Lets a Creatio site URL (and, at preflight, its resolved addresses) be a loopback address: the
  // local emulators only (src/domain/address.ts; docs/architecture.md, "No sandbox branches").
  CREATIO_ALLOW_LOOPBACK: z.preprocess(emptyToUndefined, envBoolean.default(false)),
  // Exchange Online EWS access of each site's app (docs/architecture.md, "Exchange Online"):
  // manage = add the app id to the tenant's EwsAllowedAppIDs (needs Exchange Administrator);
  // check = read and report only (a reader role); off = ask nothing.
  EWS_ACCESS: z.preprocess(emptyToUndefined, z.enum(["manage", "check", "off"], { error: "must be manage, check or off" }).default("check")),
  // Exchange Online admin API (and token resource) base URL; sovereign clouds differ
  // (e.g. https://outlook.office365.us for GCC High).
  EXCHANGE_ADMIN_URL: z.preprocess(emptyToUndefined, httpsUrl("EXCHANGE_ADMIN_URL").default("https://outlook.office365.com")),
  // Other Entra tenants (docs/architecture.md, "Serving several tenants"; README, "Serving several
  // Microsoft 365 tenants"): the multi-tenant provisioner application of the home tenant whose
  // federated credential trusts the app's managed identity. Unset: the app serves its home tenant only.
  PROVISIONER_CLIENT_ID: z.preprocess(emptyToUndefined, z.guid({ error: "must be the provisioner application's client (app) id, a GUID" }).optional()),
  // Where Entra sends a customer's administrator after admin consent: this app's GET /api/consent/callback,
  // registered as a redirect URI of the provisioner. Default: from WEBSITE_HOSTNAME, which Azure Functions sets.
  CONSENT_REDIRECT_URI: z.preprocess(emptyToUndefined, consentRedirectUri.optional()),
  WEBSITE_HOSTNAME: z.preprocess(emptyToUndefined, z.string().optional()),
  // How long an onboarding waits for a customer's administrator to consent (fractions for tests).
  ADMIN_CONSENT_WAIT_HOURS: z.preprocess(emptyToUndefined, number().min(0.0001, { error: "must be more than 0" }).max(24 * 30, { error: "must be at most 720" }).default(168)),
  // Permission profiles beside the built-in creatio-ews (docs/architecture.md, "Microsoft Graph and Entra ID").
  PERMISSION_PROFILES: permissionProfiles,
  })
  .refine((s) => s.AzureWebJobsStorage !== undefined || s.AzureWebJobsStorage__accountName !== undefined, {
    path: ["AzureWebJobsStorage"],
    message: "AzureWebJobsStorage is required but not set (a connection string, or AzureWebJobsStorage__accountName for identity-based storage)",
  });

export type Settings = z.infer<typeof settingsSchema>;

export class SettingsError extends Error {
  override name = "SettingsError";
}

/** One bad setting: its name and the rule it breaks, never its value. */
export interface SettingProblem {
  name: string;
  /** A sentence that starts with the name, e.g. "KEY_VAULT_URL must be an https:// URL". */
  message: string;
}

/** Every bad setting of an environment (empty when it parses). Values are never quoted: AzureWebJobsStorage may carry an account key. */
export function settingsProblems(env: Record<string, string | undefined>): SettingProblem[] {
  const result = settingsSchema.safeParse(env);
  if (result.success) return [];
  return result.error.issues.map((issue) => {
    const name = String(issue.path[0] ?? "(settings)");
    const raw = env[name];
    if (issue.code === "custom" && issue.message.startsWith(name)) return { name, message: issue.message };
    if (raw === undefined || raw.trim() === "") return { name, message: `${name} is required but not set` };
    return { name, message: issue.message.startsWith(name) ? issue.message : `${name} ${issue.message}` };
  });
}

/** Parses an environment; throws a SettingsError naming every bad setting. */
export function parseSettings(env: Record<string, string | undefined>): Settings {
  const result = settingsSchema.safeParse(env);
  if (result.success) return result.data;
  throw new SettingsError(`Invalid app settings: ${settingsProblems(env).map((p) => p.message).join("; ")}`);
}

/**
 * The consent callback URL Entra redirects an administrator to: CONSENT_REDIRECT_URI, else this
 * app's own host (WEBSITE_HOSTNAME; the local host serves plain http on localhost).
 */
export function consentRedirectUriOf(s: Pick<Settings, "CONSENT_REDIRECT_URI" | "WEBSITE_HOSTNAME">): string | undefined {
  if (s.CONSENT_REDIRECT_URI) return s.CONSENT_REDIRECT_URI;
  if (!s.WEBSITE_HOSTNAME) return undefined;
  const scheme = /^(localhost|127\.0\.0\.1)(:\d+)?$/i.test(s.WEBSITE_HOSTNAME) ? "http" : "https";
  return `${scheme}://${s.WEBSITE_HOSTNAME}/api/consent/callback`;
}

let cached: Settings | undefined;

/** The process settings, parsed on first use (not at import, so registration never fails on a bad setting). */
export function settings(): Settings {
  cached ??= parseSettings(process.env);
  return cached;
}

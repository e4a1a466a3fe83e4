import { z } from "zod";
import { KEY_VAULT_NAME_PATTERN, parseCreatioUrl } from "../domain/site";
import { unsafeTextProblem } from "../domain/text";
import { ewsStates } from "../domain/ews";
import { DEFAULT_PERMISSION_PROFILE } from "../domain/permissions";
import { entraTenantNameSchema } from "../domain/tenant";

/**
 * Request and response schemas of the tenants HTTP API (docs/architecture.md, "Layers"). They are the single
 * source for validation here and for the OpenAPI document, so every field carries a description.
 * Pure: no clients, no settings.
 */

/** Office 365 `MailServer` row of a standard Creatio (docs/architecture.md, "External services" > "Creatio"). */
export const OFFICE365_MAIL_SERVER_ID = "4bde7ec8-061f-46a3-ab24-49f5ec9cce8b";

export const onboardRequestSchema = z
  .strictObject({
    creatioUrl: z
      .string()
      .superRefine((value, ctx) => {
        // A loopback address depends on CREATIO_ALLOW_LOOPBACK, a setting: createTenant checks it.
        const parsed = parseCreatioUrl(value, { allowLoopback: true });
        if (!parsed.ok) ctx.addIssue({ code: "custom", message: `creatioUrl ${parsed.problem}` });
      })
      .meta({
        description: "https origin of the Creatio site, e.g. https://acme.creatio.com. The site key is its host as a URL parser gives it (lower case, IDN as punycode, port 443 dropped); a path other than / or /0 is rejected, and so are link-local, cloud metadata and unspecified IP addresses (loopback unless the app allows it).",
        example: "https://acme.creatio.com",
      }),
    creatioCredentialSecretName: z
      .string()
      .regex(KEY_VAULT_NAME_PATTERN, "must be a Key Vault secret name (letters, digits, hyphens; at most 127)")
      .meta({
        description:
          'Name of a Key Vault secret whose value is JSON: {"username","password"} for Creatio cookie login, or {"clientId","clientSecret","identityServerUrl"?} for Creatio Identity Service client credentials. The request itself never carries a password.',
        example: "creatio-api-acme",
      }),
    displayName: z.string().trim().min(1).max(120).default("Creatio").meta({ description: "Display name of the app registration." }),
    secretLifetimeDays: z
      .number()
      .int()
      .min(1)
      .max(730)
      .default(730)
      .meta({ description: "Lifetime of the client secret in days (1-730; Entra allows at most 24 months)." }),
    mailServerId: z
      .guid()
      .default(OFFICE365_MAIL_SERVER_ID)
      .meta({ description: "Creatio MailServer row to link; defaults to the standard Office 365 record." }),
    allowUserConsent: z
      .boolean()
      .default(false)
      .meta({ description: "Also allow user consent tenant-wide (manual step 9). Off by default: admin consent already covers every user." }),
    takeOver: z
      .boolean()
      .default(false)
      .meta({
        description:
          "Replace the OAuth application Creatio's mail server is linked to when it is another app than this site's (a setup by hand, or the same Creatio onboarded under another URL). Off by default: onboarding then stops before creating anything and names the linked client id.",
      }),
    enableEwsForTenant: z
      .boolean()
      .default(false)
      .meta({
        description:
          "With EWS_ACCESS=manage: also set the tenant's Exchange Online EwsEnabled to $true when it is not. Off by default: EwsEnabled is never changed, and a tenant whose EWS is disabled ends the onboarding with mail.ews = ewsDisabled.",
      }),
    entraTenantId: entraTenantNameSchema.optional().meta({
      description:
        "The Entra tenant the site's Microsoft 365 lives in: its id (a GUID) or a verified domain (contoso.onmicrosoft.com). Absent: the app's home tenant. Another tenant needs PROVISIONER_CLIENT_ID and, the first time, an administrator of that tenant to consent (the onboarding waits in awaitingAdminConsent with the URL). A site stays in the tenant it was onboarded in.",
      example: "contoso.onmicrosoft.com",
    }),
    permissionProfile: z
      .string()
      .min(1)
      .max(63)
      .default(DEFAULT_PERMISSION_PROFILE)
      .meta({
        description:
          "Name of the permission profile: which delegated scopes the app asks for and Creatio's redirect path. creatio-ews (default) is Creatio's Office 365 procedure (Exchange Online EWS.AccessAsUser.All, Microsoft Graph User.Read); others come from the PERMISSION_PROFILES setting. Onboarding a site again with another profile adds what it needs and removes only the old profile's scopes it does not have; an unknown name is a 400 listing the known ones.",
        example: DEFAULT_PERMISSION_PROFILE,
      }),
  })
  .meta({ id: "OnboardRequest", description: "Onboard a Creatio site for Office 365 OAuth." });

export type OnboardRequest = z.output<typeof onboardRequestSchema>;

export const fieldErrorSchema = z
  .object({
    path: z.string().meta({ description: "Dotted path of the offending field; empty for the body as a whole." }),
    message: z.string(),
  })
  .meta({ id: "FieldError" });

export const errorResponseSchema = z
  .object({
    error: z.string().meta({ description: "What went wrong." }),
    errors: z.array(fieldErrorSchema).optional().meta({ description: "Field-level problems (400)." }),
    instanceId: z.string().optional().meta({ description: "Instance concerned (409)." }),
  })
  .meta({ id: "ErrorResponse" });

export type ErrorResponse = z.infer<typeof errorResponseSchema>;

/** Durable's check-status body (client.createCheckStatusResponse). */
export const checkStatusResponseSchema = z
  .object({
    id: z.string().meta({ description: "Orchestration instance id: onboard-<host>, rotate-<host> or offboard-<host>." }),
    statusQueryGetUri: z.string(),
    sendEventPostUri: z.string(),
    terminatePostUri: z.string(),
    rewindPostUri: z.string().optional(),
    purgeHistoryDeleteUri: z.string(),
    suspendPostUri: z.string().optional(),
    resumePostUri: z.string().optional(),
  })
  .meta({ id: "CheckStatusResponse", description: "202 body; the Location header repeats statusQueryGetUri." });

export const stepProgressSchema = z
  .object({
    step: z.string().meta({ description: "Step running now (an activity name, or gracePeriod), `done`, or the step that failed." }),
    stepNumber: z.number().int(),
    totalSteps: z.number().int(),
    attempt: z.number().int().optional().meta({ description: "Attempt of this step (1 for the first)." }),
    retryAt: z.string().optional().meta({ description: "While waiting to retry: when the next attempt starts." }),
    lastError: z.string().optional().meta({ description: "While waiting to retry: why the last attempt failed." }),
    graceEndsAt: z.string().optional().meta({ description: "During a rotation's grace period: when it ends." }),
    error: z.string().optional().meta({ description: "The run failed: the message naming the step." }),
    tenantId: z.string().optional().meta({ description: "A site of another Entra tenant: that tenant's id." }),
    adminConsentUrl: z
      .string()
      .optional()
      .meta({ description: "While the step is awaitingAdminConsent: the URL an administrator of the site's tenant opens to consent to the provisioner (single use: it stops working once the callback arrived)." }),
    waitingUntil: z.string().optional().meta({ description: "While awaitingAdminConsent: when the onboarding stops waiting and fails (ADMIN_CONSENT_WAIT_HOURS)." }),
    waitingFor: z.string().optional().meta({ description: "While awaitingAdminConsent: why consent is needed (nobody consented yet, or the provisioner lacks a role there)." }),
    consentReceivedAt: z.string().optional().meta({ description: "When the consent callback arrived; the run then waits for Entra to show the consent." }),
  })
  .meta({ id: "StepProgress", description: "Custom status of onboardTenant and rotateSecret: step k of n." });

export const lastRunSchema = z
  .object({
    kind: z.enum(["onboard", "rotate", "offboard"]),
    outcome: z.enum(["succeeded", "failed"]),
    step: z.string().optional().meta({ description: "The step that failed." }),
    at: z.string(),
    instanceId: z.string().optional(),
  })
  .meta({ id: "LastRun", description: "How the site's last onboarding, rotation or offboarding ended; a failure stays until a later run succeeds." });

export const creatioCheckSchema = z
  .object({
    at: z.string(),
    state: z.enum(["ok", "drift", "unreachable"]).meta({ description: "ok: Creatio's mail server is linked to this site's app; drift: it is not; unreachable: Creatio could not be asked." }),
    clientId: z.string().optional().meta({ description: "Client id of the OAuth application the mail server is linked to." }),
    detail: z.string().optional(),
  })
  .meta({ id: "CreatioCheck" });

export const healthSchema = z
  .object({
    state: z.enum(["healthy", "atRisk", "broken"]).meta({ description: "broken: Creatio's mail cannot sync now or within 7 days (including: Exchange Online refuses the app's EWS calls); atRisk: it syncs but needs attention (EWS access unknown, or the EWS shutdown is near); healthy: nothing to do." }),
    mailStopsOn: z.string().nullable().meta({ description: "When Creatio's mail stops: the expiry of the secret Creatio holds, or Exchange Online's EWS shutdown (2027-04-01) when that comes first. null when Creatio holds no secret of the app." }),
    daysUntilMailStops: z.number().nullable(),
    problems: z.array(z.string()).meta({ description: "Each problem and what to do next; empty when healthy." }),
  })
  .meta({ id: "SiteHealth", description: "The site's verdict, from the secret Creatio holds, Creatio's mail server link and the last run." });

/** Exchange Online EWS readiness of the site's app (issue 8), in the status and list answers. */
export const mailStatusSchema = z
  .object({
    ews: z.enum(ewsStates).meta({
      description:
        "allowed: the tenant lets this app use EWS; notUsed: the site's permission profile does not use EWS, so neither the allow-list nor the shutdown concern it; notAllowListed: EwsEnabled is $true but the app id is not in EwsAllowedAppIDs; ewsDisabled: EwsEnabled is $false (or unset); unknown: not checked or the identity may not read it (reason says why); retired: EWS in Exchange Online was shut down (2027-04-01).",
    }),
    checkedAt: z.string().nullable().meta({ description: "When this verdict was found: by the onboarding, or by the sweep that saw it change (the sweep reads the tenant on every run and rewrites the tag only when the verdict changes)." }),
    reason: z.string().nullable().meta({ description: "Why the site is not allowed; null when it is." }),
    fix: z.string().nullable().meta({ description: "The PowerShell an Exchange administrator runs (after Connect-ExchangeOnline) for this app id; null when allowed or retired." }),
    ewsShutdownOn: z.string().meta({ description: "The day Microsoft shuts EWS in Exchange Online down for good." }),
    daysToShutdown: z.number().meta({ description: "Whole days until then (0 after)." }),
  })
  .meta({ id: "MailReadiness" });

/** Rotation facts shared by the status and list answers (issue 4); derived from tags and expiry, never a value. */
export const rotationStatusSchema = z
  .object({
    state: z.string().nullable().meta({ description: "Rotation state from the tags: idle, rotating, grace-period or failed." }),
    lastRotatedAt: z.string().nullable().meta({ description: "When the last rotation delivered the new secret to Creatio (or failed / started, per lastOutcome)." }),
    lastOutcome: z.enum(["succeeded", "failed", "running"]).nullable().meta({ description: "Outcome of the last rotation, or failed when the last onboarding or rotation failed (it stays until a later run succeeds); null when the site was never rotated." }),
    lastFailedStep: z.string().nullable().meta({ description: "The step that failed, when lastOutcome is failed." }),
    currentKeyId: z.string().nullable().meta({ description: "keyId of the password Key Vault's current version holds." }),
    previousKeyId: z.string().nullable().meta({ description: "keyId the last rotation replaced (removed once its grace period ended, unless state is grace-period)." }),
    expiresOn: z.string().nullable().meta({ description: "Expiry of the secret Creatio holds (ISO 8601): when its mail stops. null when Creatio holds none." }),
    daysLeft: z.number().nullable().meta({ description: "Whole days until expiresOn; negative once expired." }),
    currentSecretExpiresOn: z.string().nullable().meta({ description: "Expiry of Key Vault's current version (what Creatio gets on the next delivery)." }),
    nextRotationDueAt: z.string().nullable().meta({ description: "When the sweep starts the next rotation: expiry minus ROTATE_DAYS_BEFORE_EXPIRY." }),
    due: z.boolean().meta({ description: "The next sweep starts a rotation of this site." }),
    dueReason: z.string().nullable().meta({ description: "Why it is due: expired, expiresSoon, lastRotationFailed, rotationUnfinished, creatioBehind or creatioNeverConfigured." }),
  })
  .meta({ id: "RotationStatus" });

export type RotationStatus = z.infer<typeof rotationStatusSchema>;

/** Upper bound of a grace period, as OLD_SECRET_GRACE_HOURS (30 days). */
export const MAX_GRACE_PERIOD_HOURS = 24 * 30;

export const rotateRequestSchema = z
  .strictObject({
    gracePeriodHours: z
      .number()
      .min(0)
      .max(MAX_GRACE_PERIOD_HOURS)
      .optional()
      .meta({ description: "Hours the old secret stays valid after Creatio has the new one; 0 retires it at once (a suspected leak). Default OLD_SECRET_GRACE_HOURS." }),
  })
  .meta({ id: "RotateRequest", description: "Optional body of POST /api/tenants/{host}/rotate." });

export type RotateRequest = z.output<typeof rotateRequestSchema>;

export const offboardRequestSchema = z
  .strictObject({
    confirm: z.string().meta({
      description: "The site's host again (the {host} of the path, e.g. acme.creatio.com), as a guard against offboarding the wrong site. Offboarding disconnects every user's Office 365 mailbox in that Creatio.",
      example: "acme.creatio.com",
    }),
  })
  .meta({ id: "OffboardRequest", description: "Body of DELETE /api/tenants/{host}." });

/** What an offboarded site is and how to bring it back (issue 11), in the status and in DELETE's no-op answer. */
export const offboardedInfoSchema = z
  .object({
    at: z.string().meta({ description: "When the site was offboarded (its secret marked and deleted)." }),
    instanceId: z.string().nullable().meta({ description: "The offboardTenant instance that did it." }),
    secretDeletedOn: z.string().nullable().meta({ description: "When Key Vault soft-deleted the site's secret." }),
    secretPurgeOn: z.string().nullable().meta({ description: "When Key Vault purges it: until then `az keyvault secret recover` brings it back." }),
    applicationRestorableUntil: z.string().nullable().meta({ description: "Until when Entra can restore the deleted app registration (30 days)." }),
    restore: z.string().meta({ description: "How to restore within those windows: recover the secret, restore the app in Entra, then POST /api/tenants again." }),
  })
  .meta({ id: "OffboardedInfo" });

export const offboardedResponseSchema = z
  .object({
    host: z.string(),
    offboarded: z.literal(true),
    offboardedAt: z.string(),
    message: z.string().meta({ description: "That nothing was done because the site is already offboarded, and how to restore it." }),
  })
  .meta({ id: "OffboardedResponse", description: "DELETE of a site already offboarded: a no-op (200)." });

export type OffboardedResponse = z.infer<typeof offboardedResponseSchema>;

export const siteStates = ["managed", "offboarding", "offboarded"] as const;
const siteStateSchema = z.enum(siteStates).meta({
  description:
    "managed: the site is (being) onboarded or managed here; offboarding: an offboarding is running or stopped before it finished (DELETE again resumes it); offboarded: its app and secret are deleted (restorable, see offboarded.restore).",
});

/** A number of sites in the sweep's summary. */
const count = (description: string) => z.number().int().min(0).meta({ description });

/** The last rotation sweep's outcome (issue 11 part 4), stored by the sweep in Key Vault (docs/architecture.md, "Offboarding" > "The sweep's record"). */
export const lastSweepSchema = z
  .object({
    at: z.string().meta({ description: "When the sweep ran." }),
    outcome: z.enum(["succeeded", "failed"]),
    managed: count("Managed sites seen (offboarded ones excluded)."),
    due: count("Sites due for rotation."),
    started: count("Rotations started."),
    skipped: count("Due sites not started: a run of theirs was already active, or the start failed (failedToStart)."),
    expired: count("Sites whose secret in Creatio had already expired."),
    notMailReady: count("Sites Exchange Online does not let use EWS (or could not tell), from the sweep's re-check; 0 when it did not run (mailChecked false)."),
    mailChecked: z.boolean().meta({ description: "The EWS readiness re-check ran (EWS_ACCESS is not off)." }),
    alreadyRunning: count("Due sites whose rotation was already running."),
    failedToStart: count("Due sites whose rotation could not be started; the next sweep tries again."),
    unreadable: count("Secrets with our contentType whose tags do not decode: not rotated."),
    offboarded: count("Offboarded (or offboarding) sites the sweep left alone."),
    error: z.string().nullable().meta({ description: "Why the sweep failed, when it did." }),
  })
  .meta({ id: "LastSweep" });

export type LastSweep = z.infer<typeof lastSweepSchema>;

export const rotationPlanSchema = z
  .object({
    generatedAt: z.string(),
    rotateDaysBeforeExpiry: z.number().meta({ description: "ROTATE_DAYS_BEFORE_EXPIRY: the rotation window." }),
    sites: z
      .array(
        z.object({
          host: z.string(),
          due: z.boolean().meta({ description: "The next sweep starts a rotation of this site (the sweep's own rule, src/domain/rotationPlan.ts)." }),
          reason: z.string().nullable().meta({ description: "Why it is due: expired, expiresSoon, lastRotationFailed, rotationUnfinished, creatioBehind or creatioNeverConfigured; null when not due." }),
          creatioSecretExpiresOn: z.string().nullable().meta({ description: "Expiry of the secret Creatio holds (when its mail stops); null when Creatio holds none." }),
          dueOn: z.string().nullable().meta({ description: "When the sweep starts its next rotation: that expiry minus the rotation window." }),
          daysLeft: z.number().nullable().meta({ description: "Whole days until creatioSecretExpiresOn; negative once expired." }),
        }),
      )
      .meta({ description: "Every managed site (offboarded ones excluded), the soonest expiry first." }),
    lastSweep: lastSweepSchema.nullable().meta({ description: "The last sweep's outcome; null before the first sweep." }),
  })
  .meta({ id: "RotationPlan", description: "What the next sweep would do, without doing it." });

export type RotationPlan = z.infer<typeof rotationPlanSchema>;

export const tenantSummarySchema = z
  .object({
    host: z.string().meta({ description: "Site key: the Creatio site's lower-cased host." }),
    secretName: z.string().meta({ description: "Key Vault secret holding the client secret (the value is never returned)." }),
    entraTenantId: z.string().nullable().meta({ description: "The Entra tenant id of the site's app: the home tenant's (AZURE_TENANT_ID) for a site of the home tenant, null when that is not configured." }),
    homeTenant: z.boolean().meta({ description: "The site lives in the app's home tenant (its own identity manages it); false: another tenant, managed by the provisioner." }),
    appId: z.string().nullable(),
    keyId: z.string().nullable().meta({ description: "keyId of the current password." }),
    expiresOn: z.string().nullable().meta({ description: "Expiry of the secret Creatio holds (ISO 8601): when its mail stops. null when Creatio holds none." }),
    daysLeft: z.number().nullable(),
    creatioSyncedAt: z.string().nullable(),
    rotationState: z.string().nullable(),
    rotation: rotationStatusSchema.nullable(),
    health: healthSchema,
    mail: mailStatusSchema.nullable().meta({ description: "Exchange Online EWS readiness of the site's app, as last checked; null when the site's tags cannot be read." }),
    lastRun: lastRunSchema.nullable(),
    state: siteStateSchema,
    offboardedAt: z.string().nullable().meta({ description: "When the site was offboarded; listed only with ?include=offboarded." }),
  })
  .meta({ id: "TenantSummary" });

export const tenantListSchema = z.array(tenantSummarySchema).meta({ id: "TenantList" });

/** One of the site's orchestrations (onboard-<host>, rotate-<host>), from Durable's status. */
const orchestrationRunSchema = z.object({
  instanceId: z.string(),
  runtimeStatus: z.string().meta({ description: "Durable runtime status: Pending, Running, Completed, Failed, Terminated..." }),
  currentStep: stepProgressSchema.nullable(),
  error: z.string().nullable().meta({ description: "Failure message naming the step, when Failed." }),
  createdTime: z.string().nullable(),
  lastUpdatedTime: z.string().nullable(),
});

export const tenantStatusSchema = z
  .object({
    host: z.string(),
    creatioUrl: z.string(),
    redirectUri: z.string().meta({ description: "Web redirect URI registered on the app." }),
    entraTenantId: z.string().nullable().meta({ description: "The Entra tenant id of the site's app: the home tenant's (AZURE_TENANT_ID) for a site of the home tenant, null when that is not configured." }),
    homeTenant: z.boolean().meta({ description: "The site lives in the app's home tenant (its own identity manages it); false: another tenant, managed by the provisioner." }),
    adminConsent: z
      .object({
        url: z.string().meta({ description: "Open it as an administrator of the site's tenant, and accept." }),
        tenantId: z.string(),
        waitingUntil: z.string().meta({ description: "When the onboarding stops waiting and fails." }),
      })
      .nullable()
      .meta({ description: "The onboarding waits for an administrator of the site's tenant to consent (step awaitingAdminConsent); null otherwise." }),
    permissionProfile: z.string().nullable().meta({ description: "Permission profile the site was last onboarded with (creatio-ews for a site onboarded before profiles existed); null when the site's tags cannot be read." }),
    appId: z.string().nullable(),
    applicationObjectId: z.string().nullable(),
    servicePrincipalId: z.string().nullable(),
    grantedScopes: z.array(z.string()).meta({ description: "Delegated scopes granted with admin consent." }),
    secret: z
      .object({
        name: z.string(),
        version: z.string().nullable(),
        keyId: z.string().nullable(),
        expiresOn: z.string().nullable(),
        daysLeft: z.number().nullable(),
      })
      .nullable()
      .meta({ description: "Reference to the client secret in Key Vault; never its value." }),
    creatio: z.object({
      credentialSecretName: z.string().nullable(),
      mailServerId: z.string().nullable(),
      syncedAt: z.string().nullable().meta({ description: "When Creatio last received the client id and secret." }),
      syncedKeyId: z.string().nullable().meta({ description: "keyId of the secret Creatio holds; null when it never received one." }),
      secretExpiresOn: z.string().nullable().meta({ description: "Expiry of the secret Creatio holds." }),
      holdsCurrentSecret: z.boolean().meta({ description: "Creatio holds Key Vault's current version." }),
      check: creatioCheckSchema.nullable().meta({ description: "Which application Creatio's mail server is linked to, read live (cached for a minute); null when the site has no readable tags." }),
      drift: z.boolean().nullable().meta({ description: "true when Creatio's mail server no longer uses this site's app; null when Creatio could not be asked." }),
      passwordMailboxesCleared: z
        .number()
        .int()
        .nullable()
        .meta({ description: "Mailboxes on the mail server that used a stored password (basic authentication) when the last onboarding linked the OAuth application, which clears those passwords; null when unknown." }),
    }),
    rotationState: z.string().nullable(),
    rotation: rotationStatusSchema.nullable().meta({ description: "Last rotation, keyIds, expiry and when the next rotation is due." }),
    rotationRun: orchestrationRunSchema
      .extend({
        currentStep: stepProgressSchema.nullable().meta({ description: "Step of rotateSecret running now (custom status)." }),
        graceEndsAt: z.string().nullable(),
      })
      .nullable()
      .meta({ description: "The site's latest rotateSecret orchestration (rotate-<host>), if any." }),
    onboarding: orchestrationRunSchema.nullable(),
    state: siteStateSchema,
    offboarded: offboardedInfoSchema.nullable().meta({ description: "When the site was offboarded and how to restore it; null unless state is offboarded." }),
    offboarding: orchestrationRunSchema.nullable().meta({ description: "The site's latest offboardTenant orchestration (offboard-<host>), if any." }),
    health: healthSchema,
    mail: mailStatusSchema.nullable().meta({ description: "Exchange Online EWS readiness of the site's app, as last checked; null when the site's tags cannot be read." }),
    lastRun: lastRunSchema.nullable(),
    warnings: z.array(z.string()).meta({ description: "A warning when the secret lives no longer than the rotation window; how many basic-auth mailboxes lost their stored password when the OAuth application was linked." }),
  })
  .meta({ id: "TenantStatus" });

export type TenantStatus = z.infer<typeof tenantStatusSchema>;
export type TenantSummary = z.infer<typeof tenantSummarySchema>;

/** Fields of the request whose names look like secrets but carry none. */
const ALLOWED_SECRETISH_FIELDS = new Set(["creatioCredentialSecretName", "secretLifetimeDays"]);

const PASSWORD_LIKE = /(pass(word|wd|phrase)?|pwd|secret|token|apikey|privatekey|credential)/i;

/** Deepest nesting a request body may have; the API's own bodies are one level deep. */
export const MAX_JSON_DEPTH = 32;

interface JsonNode {
  path: string[];
  /** The key under which the node sits in an object; undefined for the root and array elements. */
  key?: string;
  value: unknown;
  /** 1 for the root object or array, 2 for what it holds... */
  depth: number;
}

/**
 * Every node of a parsed JSON body, depth first in document order, without recursion (a body
 * nested thousands deep would overflow the stack). Stops descending below maxDepth and reports
 * `tooDeep` instead.
 */
function* walkJson(body: unknown, maxDepth = MAX_JSON_DEPTH): Generator<JsonNode | { tooDeep: true }> {
  const stack: JsonNode[] = [{ path: [], value: body, depth: 0 }];
  while (stack.length > 0) {
    const node = stack.pop()!;
    yield node;
    const { value } = node;
    if (value === null || typeof value !== "object") continue;
    if (node.depth + 1 > maxDepth) {
      yield { tooDeep: true };
      return;
    }
    const entries: [string, unknown][] = Array.isArray(value) ? value.map((v, i) => [String(i), v]) : Object.entries(value);
    for (let i = entries.length - 1; i >= 0; i--) {
      const [key, child] = entries[i]!;
      stack.push({ path: [...node.path, key], key: Array.isArray(value) ? undefined : key, value: child, depth: node.depth + 1 });
    }
  }
}

/** True when the body nests objects or arrays deeper than maxDepth levels. */
export function isNestedTooDeeply(body: unknown, maxDepth = MAX_JSON_DEPTH): boolean {
  for (const node of walkJson(body, maxDepth)) if ("tooDeep" in node) return true;
  return false;
}

/**
 * docs/architecture.md, "The secret never enters Durable state": a request never carries a
 * password. Returns the dotted path of the first field, at any depth (up to MAX_JSON_DEPTH), whose
 * name looks like one (password, secret, clientSecret, secretKey, token...), except the request's
 * own fields that merely mention "secret".
 */
export function findPasswordLikeField(body: unknown): string | undefined {
  for (const node of walkJson(body)) {
    if ("tooDeep" in node) return undefined;
    if (node.key === undefined) continue;
    const normalised = node.key.replace(/[-_\s.]/g, "");
    const allowed = node.path.length === 1 && ALLOWED_SECRETISH_FIELDS.has(node.key);
    if (!allowed && PASSWORD_LIKE.test(normalised)) return node.path.join(".");
  }
  return undefined;
}

/** The first string value (at any depth up to MAX_JSON_DEPTH) with a control or invisible character: its dotted path and the problem. */
export function findUnsafeString(body: unknown): { path: string; problem: string } | undefined {
  for (const node of walkJson(body)) {
    if ("tooDeep" in node) return undefined;
    if (typeof node.value !== "string") continue;
    const problem = unsafeTextProblem(node.value);
    if (problem) return { path: node.path.join("."), problem };
  }
  return undefined;
}

/** zod issues → `{path, message}` with dotted paths. */
export function toFieldErrors(error: z.ZodError): { path: string; message: string }[] {
  return error.issues.flatMap((issue) => {
    if (issue.code === "unrecognized_keys") {
      return issue.keys.map((key) => ({
        path: [...issue.path, key].join("."),
        message: `unknown field ${key}`,
      }));
    }
    const path = issue.path.map(String).join(".");
    const message = path && !issue.message.startsWith(path) ? `${path}: ${issue.message}` : issue.message;
    return [{ path, message }];
  });
}

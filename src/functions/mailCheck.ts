import type { InvocationContext } from "@azure/functions";
import type { DurableClient } from "durable-functions";
import { ExchangeAccessError, type ExchangeAdmin, type ExchangeTenant, type OrganizationEwsConfig } from "../clients/exchange";
import type { SecretStore } from "../clients/keyVault";
import { EWS_SHUTDOWN_ON, ewsFix, ewsRetired, ewsVerdict, type MailReadiness } from "../domain/ews";
import { publicMessage } from "../domain/failure";
import type { ManagedSecret } from "../domain/rotationPlan";
import { onboardingInstanceIdFor, rotationInstanceIdFor } from "../domain/site";
import { mergeSiteTags } from "../domain/tags";
import { EVENTS, logEvent } from "../observability";
import { instanceStatus, isActive } from "./startExclusive";

/**
 * The sweep's re-check of Exchange Online EWS readiness (docs/architecture.md, "Exchange Online";
 * issue 8): ONE Get-OrganizationConfig per Entra tenant, whatever the number of sites in it, then
 * each site's verdict for its own app id, stored in its `mail` tag and logged as one
 * `siteNotMailReady` event per site that is not ready (infra/app/alerts.bicep alerts on it).
 * Read-only: the sweep never writes the tenant's settings (onboarding does, in manage mode).
 *
 * Sites are grouped by their tenant (the `tenantId` their tags name, the home tenant when none;
 * docs/architecture.md, "Serving several tenants"), and each group is asked with that tenant's
 * client: the app's own identity at home, the provisioner elsewhere.
 *
 * Nothing per site beyond the sweep's listing unless the verdict changed (issue 12: a sweep of
 * thousands of sites costs the listing plus one organization read per tenant): the listing already
 * carries each site's `mail` tag, so a site whose stored verdict (state and reason) is the one just
 * found is neither read nor written, and its `checkedAt` stays the time that verdict was first found
 * (docs/architecture.md, "Exchange Online"). A site whose verdict changed is written.
 *
 * Concurrent writers: a site whose onboarding or rotation is running is skipped (its run records
 * its own state); the others are written read-modify-write on the current version's tags, so no
 * other tag is replaced.
 */

const HOME = "home";

export interface MailCheckDeps {
  secrets: SecretStore;
  /** The home tenant's client. */
  exchange?: ExchangeAdmin;
  /** Another tenant's client (sites whose tags name a tenant); those sites are not checked when omitted. */
  exchangeFor?: (tenantId: string) => ExchangeAdmin;
  ewsAccess: "manage" | "check" | "off";
  now: Date;
}

export interface MailCheckSummary {
  /** Get-OrganizationConfig calls made (one per tenant). */
  organizationReads: number;
  checked: number;
  /** Sites whose verdict changed, so their `mail` tag was written. */
  recorded: number;
  notMailReady: number;
  /** Sites skipped because an onboarding or rotation of theirs is running. */
  skippedRunning: number;
}

export async function recheckMailReadiness(client: DurableClient, context: InvocationContext, allSites: ManagedSecret[], deps: MailCheckDeps): Promise<MailCheckSummary> {
  const summary: MailCheckSummary = { organizationReads: 0, checked: 0, recorded: 0, notMailReady: 0, skippedRunning: 0 };
  // A site whose permission profile does not use EWS was recorded `notUsed` by its onboarding
  // (allowEwsAccess): the allow-list does not concern it. Onboarding it with an EWS profile records a verdict again.
  const sites = allSites.filter((site) => site.tags.mailReadiness?.ews !== "notUsed");
  if (deps.ewsAccess === "off" || !deps.exchange || sites.length === 0) return summary;
  const checkedAt = deps.now.toISOString();

  // Sites by Entra tenant: one organization read per tenant.
  const byTenant = new Map<string, ManagedSecret[]>();
  for (const site of sites) {
    const key = site.tags.tenantId?.toLowerCase() ?? HOME;
    const group = byTenant.get(key);
    if (group) group.push(site);
    else byTenant.set(key, [site]);
  }

  for (const [tenantKey, groupSites] of byTenant) {
    const exchange = tenantKey === HOME ? deps.exchange : deps.exchangeFor?.(tenantKey);
    if (!exchange) continue;
    const who = tenantKey === HOME ? "The app's identity" : `The provisioner in tenant ${tenantKey}`;
    let tenant: ExchangeTenant | null = null;
    let config: OrganizationEwsConfig | undefined;
    let unknownReason: string | undefined;
    if (!ewsRetired(deps.now)) {
      try {
        tenant = await exchange.tenant();
      } catch (error) {
        const status = (error as { statusCode?: number })?.statusCode;
        if (status !== 401 && status !== 403) {
          if (tenantKey === HOME) throw error;
          context.warn(`Could not read the organization of tenant ${tenantKey}: ${publicMessage(error, 300)}`);
          continue;
        }
        unknownReason = `${who} cannot read the organization from Microsoft Graph (needs Organization.Read.All): ${publicMessage(error, 200)}`;
      }
    }
    const tenantId = tenant?.tenantId ?? (tenantKey === HOME ? "home" : tenantKey);
    if (tenant) {
      try {
        summary.organizationReads += 1;
        config = await exchange.getOrganizationConfig(tenant);
      } catch (error) {
        if (!(error instanceof ExchangeAccessError)) {
          // Throttled or down after the client's retries: keep what the tags say; the next sweep tries again.
          context.warn(`Could not read Exchange Online's organization config for tenant ${tenantId}: ${publicMessage(error, 300)}`);
          continue;
        }
        unknownReason = publicMessage(error, 300);
      }
    }
    // One tenant's list serves all its sites: looked up, not scanned per site (thousands of sites, thousands of ids).
    const allowed = config ? new Set(config.EwsAllowedAppIDs.map((id) => id.toLowerCase())) : undefined;
    const retired = ewsRetired(deps.now);
    for (const site of groupSites) {
      const verdict: Omit<MailReadiness, "checkedAt"> = retired
        ? { ews: "retired", reason: `EWS in Exchange Online was shut down on ${EWS_SHUTDOWN_ON}.` }
        : config
          ? ewsVerdict(config, site.tags.appId, allowed)
          : { ews: "unknown", reason: (unknownReason ?? "not checked").slice(0, 300) };
      if (!sameVerdict(site.tags.mailReadiness, verdict)) {
        if (await busy(client, site.host)) {
          summary.skippedRunning += 1;
          continue;
        }
        try {
          await store(deps.secrets, site.secretName, { ...verdict, checkedAt });
          summary.recorded += 1;
        } catch (error) {
          context.warn(`Could not record the EWS readiness of ${site.host}: ${publicMessage(error, 300)}`);
        }
      }
      summary.checked += 1;
      if (verdict.ews !== "allowed") {
        summary.notMailReady += 1;
        logEvent(context, EVENTS.siteNotMailReady, {
          site: site.host,
          outcome: verdict.ews,
          level: "warn",
          tenantId: tenant?.tenantId ?? null,
          appId: site.tags.appId,
          reason: verdict.reason ?? null,
          fix: ewsFix(verdict.ews, site.tags.appId),
        });
      }
    }
  }
  return summary;
}

/** The stored verdict says what was just found (state and reason; not when). */
function sameVerdict(stored: MailReadiness | undefined, found: Omit<MailReadiness, "checkedAt">): boolean {
  return stored !== undefined && stored.ews === found.ews && (stored.reason ?? "") === (found.reason ?? "");
}

async function busy(client: DurableClient, host: string): Promise<boolean> {
  for (const id of [onboardingInstanceIdFor(host), rotationInstanceIdFor(host)]) {
    if (isActive(await instanceStatus(client, id))) return true;
  }
  return false;
}

/** Read-modify-write of the current version's tags: only the `mail` tag changes. */
async function store(secrets: SecretStore, secretName: string, readiness: MailReadiness): Promise<void> {
  const { properties } = await secrets.getSecret(secretName);
  const tags = mergeSiteTags(properties.tags, { mailReadiness: readiness });
  await secrets.updateSecretProperties(secretName, properties.version!, { tags });
}

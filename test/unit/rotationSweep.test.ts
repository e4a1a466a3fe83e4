import { runRotationSweep } from "../../src/functions/rotationSweep";
import { secretNameFor } from "../../src/domain/site";
import { decodeSiteTags } from "../../src/domain/tags";
import { ExchangeAccessError } from "../../src/clients/exchange";
import { SWEEP_RECORD_SECRET } from "../../src/functions/sweepRecord";
import { DAY, events, fakeDurableClient, MemoryVault, NOW, recordingContext } from "./rotationFakes";

const inDays = (d: number) => new Date(NOW.getTime() + d * DAY);

function vaultWithSpread() {
  const vault = new MemoryVault();
  // Expiries spread across 90 days, one already expired, one whose last rotation failed.
  const spread: [string, number][] = [
    ["expired.example.com", -2],
    ["d05.example.com", 5],
    ["d29.example.com", 29],
    ["d31.example.com", 31],
    ["d60.example.com", 60],
    ["d89.example.com", 89],
  ];
  for (const [host, days] of spread) vault.site(host, inDays(days));
  vault.site("failed.example.com", inDays(80), { rotationState: "failed", rotationUpdatedAt: NOW.toISOString() });
  // Not ours: other contentType, and ours by contentType but with tags that do not decode.
  vault.seed("db-password", "hunter2", { contentType: "text/plain", expiresOn: inDays(1) });
  vault.seed(secretNameFor("broken.example.com"), "x", { contentType: "text/plain; creatio-o365-oauth", tags: { site: "broken.example.com" } });
  return vault;
}

/** fakeDurableClient, counting its status reads. */
function countingStatus(running: Set<string>) {
  const { client } = fakeDurableClient(running);
  let reads = 0;
  const getStatus = client.getStatus.bind(client);
  (client as unknown as { getStatus: typeof getStatus }).getStatus = (...args) => (reads++, getStatus(...args));
  return { client, statusReads: () => reads };
}

const deps = (vault: MemoryVault) => ({ secrets: vault, now: () => NOW, rotateDaysBeforeExpiry: 30, gracePeriodHours: 24 });

test("a sweep starts exactly the due sites, an immediate second sweep none", async () => {
  const vault = vaultWithSpread();
  const { client, started } = fakeDurableClient();
  const first = recordingContext("rotationSweep");
  const summary = await runRotationSweep(client, first.context, deps(vault));
  expect(started.map((s) => s.instanceId).sort()).toEqual(
    ["rotate-d05.example.com", "rotate-d29.example.com", "rotate-expired.example.com", "rotate-failed.example.com"].sort(),
  );
  expect(started[0]!.input).toEqual({ host: expect.any(String), gracePeriodHours: 24, trigger: "sweep" });
  expect(summary).toEqual({ managed: 7, due: 4, started: 4, alreadyRunning: 0, expired: 1, unreadable: 1, failedToStart: 0, offboarded: 0 });

  // One summary line, one secret.expiry line per managed site (what the 7-day alert reads), a loud warning for the expired one.
  expect(events(first.lines, "sweep.finished")).toEqual([expect.objectContaining({ outcome: "succeeded", managed: 7, due: 4, started: 4, expired: 1 })]);
  const expiry = events(first.lines, "secret.expiry");
  expect(expiry.map((e) => e.site)).toEqual([
    "expired.example.com",
    "d05.example.com",
    "d29.example.com",
    "d31.example.com",
    "d60.example.com",
    "failed.example.com",
    "d89.example.com",
  ]);
  expect(expiry[0]).toMatchObject({ outcome: "rotationStarted", expired: true, daysLeft: -2, expiresOn: inDays(-2).toISOString() });
  expect(expiry[3]).toMatchObject({ outcome: "ok", daysLeft: 31 });
  expect(first.lines.some((l) => /^warning: EXPIRED: the client secret Creatio holds for expired\.example\.com/.test(l))).toBe(true);
  expect(first.lines.join("\n")).not.toMatch(/hunter2|secret-of-/);

  const second = recordingContext("rotationSweep");
  const again = await runRotationSweep(client, second.context, deps(vault));
  expect(again).toMatchObject({ due: 4, started: 0, alreadyRunning: 4 });
  expect(started).toHaveLength(4);
});

test("a site whose start fails does not stop the sweep, and is reported", async () => {
  const vault = vaultWithSpread();
  const { client, started } = fakeDurableClient();
  const startNew = client.startNew.bind(client);
  (client as unknown as { startNew: typeof startNew }).startNew = async (name, options) => {
    if (options?.instanceId === "rotate-d05.example.com") throw new Error("The operation failed with an unexpected status code: 500.");
    return startNew(name, options);
  };
  const { context, lines } = recordingContext("rotationSweep");
  const summary = await runRotationSweep(client, context, deps(vault));
  expect(summary).toMatchObject({ due: 4, started: 3, failedToStart: 1 });
  expect(started).toHaveLength(3);
  expect(events(lines, "secret.expiry").find((e) => e.site === "d05.example.com")).toMatchObject({ outcome: "rotationStartFailed" });
});

test("the EWS readiness re-check reads the organization once per tenant, records each site's verdict in its mail tag, logs siteNotMailReady, and skips a site whose rotation runs", async () => {
  const vault = new MemoryVault();
  for (const host of ["a.example.com", "b.example.com", "c.example.com", "busy.example.com"]) vault.site(host, inDays(300), { previousKeyId: `k0-${host}` });
  const reads: string[] = [];
  const exchange = {
    tenant: async () => ({ tenantId: "t-home", initialDomain: "contoso.onmicrosoft.com" }),
    getOrganizationConfig: async (tenant: { tenantId: string }) => (reads.push(tenant.tenantId), { EwsEnabled: true, EwsAllowedAppIDs: ["app-a.example.com"] }),
    addEwsAllowedAppIds: async () => {
      throw new Error("the sweep never writes");
    },
    removeEwsAllowedAppIds: async () => {
      throw new Error("the sweep never writes");
    },
    setEwsEnabled: async () => {
      throw new Error("the sweep never writes");
    },
  };
  const { client } = fakeDurableClient(new Set(["rotate-busy.example.com"]));
  const run = recordingContext("rotationSweep");
  const summary = await runRotationSweep(client, run.context, { ...deps(vault), exchange, ewsAccess: "check" });
  expect(reads).toEqual(["t-home"]);
  expect(summary.mail).toEqual({ organizationReads: 1, checked: 3, recorded: 3, notMailReady: 2, skippedRunning: 1 });
  const tagsOf = (host: string) => decodeSiteTags(vault.latest(secretNameFor(host))!.properties.tags);
  expect(tagsOf("a.example.com")).toMatchObject({ ok: true, tags: { mailReadiness: { ews: "allowed", checkedAt: NOW.toISOString() }, previousKeyId: "k0-a.example.com" } });
  expect(tagsOf("b.example.com")).toMatchObject({ ok: true, tags: { mailReadiness: { ews: "notAllowListed" }, appId: "app-b.example.com", keyId: "k1-b.example.com" } });
  expect(tagsOf("busy.example.com")).toMatchObject({ ok: true, tags: { previousKeyId: "k0-busy.example.com" } });
  expect((tagsOf("busy.example.com") as any).tags.mailReadiness).toBeUndefined();
  expect(events(run.lines, "siteNotMailReady").map((e) => [e.site, e.outcome, e.fix])).toEqual([
    ["b.example.com", "notAllowListed", 'Set-OrganizationConfig -EwsAllowedAppIDs @{Add="app-b.example.com"}'],
    ["c.example.com", "notAllowListed", 'Set-OrganizationConfig -EwsAllowedAppIDs @{Add="app-c.example.com"}'],
  ]);
  expect(run.lines.filter((l) => l.includes('"siteNotMailReady"')).every((l) => l.startsWith("warning:"))).toBe(true);

  // The same verdicts again: nothing per site beyond the listing (no status read, no Key Vault read
  // or write), checkedAt stays when each verdict was found; the not-ready sites are still logged.
  const reads0 = vault.reads.length;
  const writes0 = vault.writes.length;
  const { client: watched, statusReads } = countingStatus(new Set(["rotate-busy.example.com"]));
  const same = recordingContext("rotationSweep");
  const unchanged = await runRotationSweep(watched, same.context, { ...deps(vault), now: () => new Date(NOW.getTime() + DAY), exchange, ewsAccess: "check" });
  expect(unchanged.mail).toEqual({ organizationReads: 1, checked: 3, recorded: 0, notMailReady: 2, skippedRunning: 1 });
  // The one write is the sweep's own record (src/functions/sweepRecord.ts), not a site's.
  expect([vault.reads.length - reads0, vault.writes.slice(writes0).map((w) => w.name), statusReads()]).toEqual([0, [SWEEP_RECORD_SECRET], 2]);
  expect(tagsOf("a.example.com")).toMatchObject({ ok: true, tags: { mailReadiness: { ews: "allowed", checkedAt: NOW.toISOString() } } });
  expect(events(same.lines, "siteNotMailReady").map((e) => e.site)).toEqual(["b.example.com", "c.example.com"]);

  // Without the role: unknown for every site, from one failed read, never a failed sweep.
  const denied = { ...exchange, getOrganizationConfig: async () => (reads.push("denied"), Promise.reject(new ExchangeAccessError("Get-OrganizationConfig", 401, "lacks Exchange.ManageAsApp"))) };
  const second = recordingContext("rotationSweep");
  const after = await runRotationSweep(fakeDurableClient().client, second.context, { ...deps(vault), exchange: denied, ewsAccess: "check" });
  expect(after.mail).toMatchObject({ organizationReads: 1, checked: 4, recorded: 4, notMailReady: 4 });
  expect(events(second.lines, "siteNotMailReady").map((e) => e.outcome)).toEqual(["unknown", "unknown", "unknown", "unknown"]);
  expect(tagsOf("a.example.com")).toMatchObject({ ok: true, tags: { mailReadiness: { ews: "unknown", reason: expect.stringMatching(/Exchange\.ManageAsApp/) } } });
});

test("the EWS re-check leaves a site whose permission profile does not use EWS (mail notUsed) alone: no verdict, no siteNotMailReady", async () => {
  const vault = new MemoryVault();
  const notUsed = { ews: "notUsed" as const, checkedAt: inDays(-1).toISOString(), reason: "The site's permission profile does not use Exchange Online EWS." };
  vault.site("graph.example.com", inDays(300), { mailReadiness: notUsed, permissionProfile: "creatio-graph" });
  vault.site("ews.example.com", inDays(300));
  const exchange = {
    tenant: async () => ({ tenantId: "t-home", initialDomain: "contoso.onmicrosoft.com" }),
    getOrganizationConfig: async () => ({ EwsEnabled: true, EwsAllowedAppIDs: [] }),
    addEwsAllowedAppIds: async () => undefined,
    removeEwsAllowedAppIds: async () => undefined,
    setEwsEnabled: async () => undefined,
  };
  const run = recordingContext("rotationSweep");
  const summary = await runRotationSweep(fakeDurableClient().client, run.context, { ...deps(vault), exchange, ewsAccess: "check" });
  expect(summary.mail).toEqual({ organizationReads: 1, checked: 1, recorded: 1, notMailReady: 1, skippedRunning: 0 });
  expect(events(run.lines, "siteNotMailReady").map((e) => e.site)).toEqual(["ews.example.com"]);
  expect(decodeSiteTags(vault.latest(secretNameFor("graph.example.com"))!.properties.tags)).toMatchObject({ ok: true, tags: { mailReadiness: notUsed, permissionProfile: "creatio-graph" } });
});

test("the sweep starts due rotations concurrently, never more than ROTATION_SWEEP_CONCURRENCY at once, and logs in the plan's order", async () => {
  const vault = new MemoryVault();
  const hosts = Array.from({ length: 10 }, (_, i) => `s${String(i).padStart(2, "0")}.example.com`);
  hosts.forEach((host, i) => vault.site(host, inDays(1 + i)));
  const { client, started } = fakeDurableClient();
  let inFlight = 0;
  let most = 0;
  const startNew = client.startNew.bind(client);
  (client as unknown as { startNew: typeof startNew }).startNew = async (...args: Parameters<typeof startNew>) => {
    inFlight += 1;
    most = Math.max(most, inFlight);
    await new Promise((resolve) => setTimeout(resolve, 20));
    inFlight -= 1;
    return startNew(...args);
  };
  const { context, lines } = recordingContext("rotationSweep");
  const summary = await runRotationSweep(client, context, { ...deps(vault), concurrency: 3 });
  expect(summary).toMatchObject({ managed: 10, due: 10, started: 10 });
  expect(started).toHaveLength(10);
  expect(most).toBe(3);
  expect(events(lines, "secret.expiry").map((e) => e.site)).toEqual(hosts);
});

test("sites of another tenant: the re-check asks that tenant's Exchange Online once, and a due site's rotation is started for its tenant", async () => {
  const TENANT_B = "22222222-3333-4444-8555-666666666666";
  const vault = new MemoryVault();
  vault.site("home.example.com", inDays(300));
  vault.site("b1.example.com", inDays(300), { tenantId: TENANT_B });
  vault.site("b2.example.com", inDays(300), { tenantId: TENANT_B });
  vault.site("b3.example.com", inDays(3), { tenantId: TENANT_B });
  const reads: string[] = [];
  const clientFor = (tenantId: string, allowed: string[]) => ({
    tenant: async () => ({ tenantId, initialDomain: `${tenantId}.onmicrosoft.com` }),
    getOrganizationConfig: async (tenant: { tenantId: string }) => (reads.push(tenant.tenantId), { EwsEnabled: true, EwsAllowedAppIDs: allowed }),
    addEwsAllowedAppIds: async () => undefined,
    removeEwsAllowedAppIds: async () => undefined,
    setEwsEnabled: async () => undefined,
  });
  const asked: string[] = [];
  const { client, started } = fakeDurableClient();
  const run = recordingContext("rotationSweep");
  const summary = await runRotationSweep(client, run.context, {
    ...deps(vault),
    exchange: clientFor("t-home", ["app-home.example.com"]),
    exchangeFor: (tenantId) => (asked.push(tenantId), clientFor(tenantId, ["app-b1.example.com", "app-b3.example.com"])),
    ewsAccess: "check",
  });
  expect(asked).toEqual([TENANT_B]);
  expect(reads.sort()).toEqual([TENANT_B, "t-home"]);
  // b3's rotation was just started: its run records its own state.
  expect(summary.mail).toEqual({ organizationReads: 2, checked: 3, recorded: 3, notMailReady: 1, skippedRunning: 1 });
  const notReady = events(run.lines, "siteNotMailReady");
  expect(notReady.map((e) => [e.site, e.tenantId])).toEqual([["b2.example.com", TENANT_B]]);
  expect(started).toEqual([{ name: "rotateSecret", instanceId: "rotate-b3.example.com", input: expect.objectContaining({ host: "b3.example.com", trigger: "sweep", tenantId: TENANT_B }) }]);
});

/**
 * The command line's formatting (cli/format.ts) as pure functions: sorting, the days bar, colour
 * rules, the sites table, one site's sections, progress lines of a run, the summaries, and the
 * rotation plan (shapes: src/api/schemas.ts).
 */
import {
  colourEnabled,
  daysBar,
  failureText,
  formatPlan,
  formatSite,
  formatSites,
  lastSweepLine,
  offboardSummary,
  onboardSummary,
  painter,
  progressLines,
  sortSites,
  stepLabel,
} from "../../cli/format";
import { canSpin } from "../../cli/follow";

const site = (host: string, state: string, daysLeft: number | null, extra: Record<string, unknown> = {}) => ({
  host,
  health: { state, mailStopsOn: null, daysUntilMailStops: daysLeft, problems: [] },
  mail: { ews: "allowed" },
  rotation: { daysLeft, nextRotationDueAt: daysLeft === null ? null : "2027-01-05T00:00:00.000Z" },
  daysLeft,
  ...extra,
});
const ANSI = /\u001b\[/;

describe("sorting", () => {
  it("puts broken before atRisk before healthy, then fewest days (no secret first), then host", () => {
    const sorted = sortSites([
      site("h-long.example", "healthy", 700),
      site("r.example", "atRisk", 100),
      site("h-short.example", "healthy", 40),
      site("b-some.example", "broken", 3),
      site("b-none.example", "broken", null),
      site("a-tie.example", "healthy", 40),
    ]);
    expect(sorted.map((s) => s.host)).toEqual(["b-none.example", "b-some.example", "r.example", "a-tie.example", "h-short.example", "h-long.example"]);
  });
});

describe("days bar", () => {
  it("is full at 730 days, empty when expired, one cell while a day is left, blank without a secret", () => {
    expect(daysBar(730)).toBe("██████████");
    expect(daysBar(365)).toBe("█████░░░░░");
    expect(daysBar(1)).toBe("█░░░░░░░░░");
    expect(daysBar(0)).toBe("░░░░░░░░░░");
    expect(daysBar(-5)).toBe("░░░░░░░░░░");
    expect(daysBar(null)).toBe("");
  });
});

describe("colour", () => {
  it("only on a terminal, and not when NO_COLOR is set", () => {
    expect(colourEnabled({ isTTY: true }, {})).toBe(true);
    expect(colourEnabled({ isTTY: false }, {})).toBe(false);
    expect(colourEnabled({}, {})).toBe(false);
    expect(colourEnabled({ isTTY: true }, { NO_COLOR: "1" })).toBe(false);
    // no-color.org: an empty NO_COLOR does not count.
    expect(colourEnabled({ isTTY: true }, { NO_COLOR: "" })).toBe(true);
  });
});

describe("spinner", () => {
  it("only on a terminal with a width (ora never finishes redrawing on a width of 0)", () => {
    expect(canSpin({ write: () => true, isTTY: true, columns: 80 })).toBe(true);
    expect(canSpin({ write: () => true, isTTY: true, columns: 0 })).toBe(false);
    expect(canSpin({ write: () => true, isTTY: true })).toBe(false);
    expect(canSpin({ write: () => true, isTTY: false, columns: 80 })).toBe(false);
  });
});

describe("sites table", () => {
  const sites = [site("ok.example", "healthy", 600), site("bad.example", "broken", 2, { entraTenantId: "tenant-1", homeTenant: false })];

  it("lists least healthy first with tenant (blank when unknown), state, mail, days with a bar and next rotation; no colour codes when plain", () => {
    const text = formatSites(sites);
    expect(text).not.toMatch(ANSI);
    const lines = text.split("\n");
    expect(lines[1]).toMatch(/SITE\s+│\s*TENANT\s+│\s*STATE\s+│\s*MAIL\s+│\s*SECRET EXPIRES IN\s+│\s*NEXT ROTATION/);
    const bad = lines.findIndex((l) => l.includes("bad.example"));
    const ok = lines.findIndex((l) => l.includes("ok.example"));
    expect(bad).toBeGreaterThan(0);
    expect(ok).toBeGreaterThan(bad);
    expect(lines[bad]).toMatch(/bad\.example\s+│ tenant-1\s+│ broken\s+│ allowed\s+│ █░░░░░░░░░ 2d\s+│ 2027-01-05/);
    expect(lines[ok]).toMatch(/ok\.example\s+│\s+│ healthy\s+│ allowed\s+│ ████████░░ 600d/);
  });

  it("colours the state when asked", () => {
    const text = formatSites(sites, painter(true));
    expect(text).toContain("\u001b[31mbroken\u001b[39m");
    expect(text).toContain("\u001b[32mhealthy\u001b[39m");
  });

  it("says how to onboard when there is no site", () => {
    expect(formatSites([])).toMatch(/No managed sites.*creatio-o365 onboard/);
  });

  it("marks an offboarded or offboarding site (?include=offboarded)", () => {
    const text = formatSites([site("gone.example", "broken", null, { state: "offboarded", offboardedAt: "2026-12-01T00:00:00Z" }), site("going.example", "broken", 5, { state: "offboarding" }), site("here.example", "healthy", 600, { state: "managed" })]);
    expect(text).toMatch(/gone\.example \(offboarded\)/);
    expect(text).toMatch(/going\.example \(offboarding\)/);
    expect(text).not.toMatch(/here\.example \(/);
  });

  it("says 'no secret' when Creatio holds none", () => {
    expect(formatSites([site("new.example", "broken", null)])).toMatch(/new\.example.*no secret/);
  });
});

describe("one site", () => {
  const status = {
    host: "acme.example",
    creatioUrl: "https://acme.example",
    redirectUri: "https://acme.example/0/rest/Office365OAuthAuthenticator/ProcessAuthenticationCode",
    permissionProfile: "creatio-ews",
    appId: "app-1",
    applicationObjectId: "obj-1",
    servicePrincipalId: "sp-1",
    grantedScopes: ["EWS.AccessAsUser.All", "User.Read"],
    secret: { name: "creatio-o365-acme--example", version: "v1", keyId: "k1", expiresOn: "2028-01-01T00:00:00Z", daysLeft: 700 },
    creatio: { credentialSecretName: "cred", mailServerId: "ms", syncedAt: "2026-01-01T00:00:00Z", syncedKeyId: "k1", secretExpiresOn: "2028-01-01T00:00:00Z", holdsCurrentSecret: true, check: { at: "x", state: "drift", clientId: "other" }, drift: true, passwordMailboxesCleared: 2 },
    rotationState: "idle",
    rotation: { state: "idle", lastRotatedAt: null, lastOutcome: null, lastFailedStep: null, currentKeyId: "k1", previousKeyId: null, expiresOn: "2028-01-01T00:00:00Z", daysLeft: 700, currentSecretExpiresOn: "2028-01-01T00:00:00Z", nextRotationDueAt: "2027-12-02T00:00:00Z", due: false, dueReason: null },
    rotationRun: null,
    onboarding: { instanceId: "onboard-acme.example", runtimeStatus: "Completed", currentStep: { step: "done", stepNumber: 8, totalSteps: 8 }, error: null, createdTime: null, lastUpdatedTime: "2026-01-01T00:00:00Z" },
    health: { state: "broken", mailStopsOn: "2028-01-01T00:00:00Z", daysUntilMailStops: 700, problems: ["Creatio's mail server is linked to another app: onboard again with takeOver"] },
    mail: { ews: "notAllowListed", checkedAt: "2026-01-01T00:00:00Z", reason: "not on the list", fix: 'Set-OrganizationConfig -EwsAllowedAppIDs @{Add="app-1"}', ewsShutdownOn: "2027-04-01", daysToShutdown: 120 },
    lastRun: { kind: "onboard", outcome: "succeeded", at: "2026-01-01T00:00:00Z" },
    warnings: [],
  };

  it("shows every section, the problems and the fix", () => {
    const text = formatSite(status);
    for (const title of ["Health", "Application", "Mail (Exchange Online EWS)", "Creatio", "Secret (Key Vault; never its value)", "Rotation", "Last run", "Runs"]) {
      expect(text).toContain(`\n${title}\n`);
    }
    expect(text).toMatch(/^acme\.example {2}broken/);
    expect(text).toContain("    - Creatio's mail server is linked to another app: onboard again with takeOver");
    expect(text).toMatch(/fix\s+Set-OrganizationConfig -EwsAllowedAppIDs @\{Add="app-1"\}/);
    expect(text).toMatch(/live check\s+drift \(linked client id other\)/);
    expect(text).toMatch(/next rotation due\s+2027-12-02/);
    expect(text).toMatch(/onboarding: onboard-acme\.example Completed, done/);
    expect(text).not.toContain("Waiting for admin consent");
  });

  it("shows the consent URL, the tenant and the deadline while the onboarding waits for admin consent", () => {
    const waiting = {
      ...status,
      entraTenantId: "t-b",
      homeTenant: false,
      adminConsent: { url: "https://login.example/t-b/adminconsent?state=s", tenantId: "t-b", waitingUntil: "2026-12-09T12:00:00.000Z" },
    };
    const text = formatSite(waiting);
    expect(text).toContain("\nWaiting for admin consent\n");
    expect(text).toMatch(/consent URL\s+https:\/\/login\.example\/t-b\/adminconsent\?state=s/);
    expect(text).toMatch(/waits until\s+2026-12-09T12:00:00\.000Z/);
    expect(text).toMatch(/\n {2}tenant\s+t-b\n/);
  });
});

describe("an offboarded site", () => {
  it("says so in its header and shows when, the restore windows and how to restore", () => {
    const text = formatSite({
      host: "gone.example",
      state: "offboarded",
      health: { state: "broken", problems: [] },
      offboarded: { at: "2026-12-01T00:00:00Z", instanceId: "offboard-gone.example", secretDeletedOn: "2026-12-01T00:00:00Z", secretPurgeOn: "2027-03-01T00:00:00Z", applicationRestorableUntil: "2026-12-31T00:00:00Z", restore: "recover the secret, restore the app, POST again" },
    });
    expect(text).toMatch(/^gone\.example {2}broken \(offboarded\)/);
    expect(text).toContain("\nOffboarded\n");
    expect(text).toMatch(/secret recoverable until +2027-03-01T00:00:00Z/);
    expect(text).toMatch(/app restorable until +2026-12-31T00:00:00Z/);
    expect(text).toMatch(/restore +recover the secret, restore the app, POST again/);
  });
});

describe("progress of a run", () => {
  it("prints step k of n once per step and attempt", () => {
    const first = { step: "checkCreatioSite", stepNumber: 1, totalSteps: 8, attempt: 1 };
    expect(progressLines(undefined, first)).toEqual(["step 1 of 8: checkCreatioSite"]);
    expect(progressLines(first, { ...first })).toEqual([]);
    expect(progressLines(first, { step: "ensureApplication", stepNumber: 2, totalSteps: 8, attempt: 1 })).toEqual(["step 2 of 8: ensureApplication"]);
  });

  it("shows a retry: the attempt, why it failed and when the next one starts; then the next attempt", () => {
    const running = { step: "ensureApplication", stepNumber: 2, totalSteps: 8, attempt: 1 };
    const waiting = { ...running, retryAt: "2026-12-02T10:00:02.000Z", lastError: "Graph 429 TooManyRequests" };
    expect(progressLines(running, waiting)).toEqual(["  attempt 1 of ensureApplication failed: Graph 429 TooManyRequests; retrying at 2026-12-02T10:00:02.000Z"]);
    expect(progressLines(waiting, { ...running, attempt: 2 })).toEqual(["step 2 of 8: ensureApplication (attempt 2)"]);
  });

  it("shows the consent URL when the run waits for admin consent, and a grace period", () => {
    // The custom status onboardTenant shows while it waits (src/orchestrators/adminConsent.ts).
    const awaiting = { step: "awaitingAdminConsent", stepNumber: 2, totalSteps: 9, tenantId: "t-b", adminConsentUrl: "https://login.example/t-b/adminconsent?state=x", waitingUntil: "2026-12-09T12:00:00.000Z" };
    expect(progressLines(undefined, awaiting)).toEqual([
      "step 2 of 9: awaitingAdminConsent",
      "  waiting for admin consent until 2026-12-09T12:00:00.000Z: an administrator of tenant t-b (Global Administrator or Privileged Role Administrator) opens https://login.example/t-b/adminconsent?state=x and accepts; the onboarding then continues",
    ]);
    expect(progressLines(undefined, { ...awaiting, waitingFor: "No administrator of tenant t-b has consented to the provisioner yet." })[2]).toBe("  (No administrator of tenant t-b has consented to the provisioner yet.)");
    // Printed once, not at every poll.
    expect(progressLines(awaiting, { ...awaiting, lastError: "still waiting" })).toEqual([]);
    expect(progressLines(undefined, { step: "gracePeriod", stepNumber: 5, totalSteps: 8, graceEndsAt: "2026-12-03T00:00:00Z" })).toContain("  grace period: the old secret stays valid until 2026-12-03T00:00:00Z");
  });

  it("labels a step without numbers, and done", () => {
    expect(stepLabel({ step: "starting", stepNumber: 0, totalSteps: 8 })).toBe("starting");
    expect(stepLabel({ step: "done", stepNumber: 8, totalSteps: 8 })).toBe("done");
  });

  it("a failure names the step and the app's message", () => {
    const failed = {
      runtimeStatus: "Failed",
      customStatus: { step: "configureCreatio", stepNumber: 7, totalSteps: 8, error: "Step 7 of 8 (configureCreatio) failed: Creatio 503. Fix Creatio, then POST again." },
      output: "Orchestrator function 'onboardTenant' failed: Step 7 of 8 (configureCreatio) failed: Creatio 503.",
    };
    expect(failureText("onboarding", failed)).toBe("onboarding failed: Step 7 of 8 (configureCreatio) failed: Creatio 503. Fix Creatio, then POST again.");
    expect(failureText("rotation", { runtimeStatus: "Terminated", customStatus: { step: "gracePeriod" }, output: "stopped by hand" })).toBe("rotation terminated at gracePeriod: stopped by hand");
  });
});

describe("summaries", () => {
  it("onboarding: app id, secret expiry, mail readiness with the fix, health", () => {
    const text = onboardSummary(
      { host: "acme.example", appId: "app-1", secret: { name: "creatio-o365-acme--example", expiresOn: "2028-12-01T00:00:00Z" }, mail: { ews: "allowed", reason: null } },
      { health: { state: "atRisk", problems: ["EWS shuts down in 50 days"] }, mail: { ews: "notAllowListed", reason: "not listed", fix: "Set-OrganizationConfig ..." } },
    );
    expect(text.split("\n")).toEqual([
      "onboarded acme.example",
      "  app id          app-1",
      "  secret expires  2028-12-01T00:00:00Z  (Key Vault creatio-o365-acme--example; the value is never shown)",
      "  mail readiness  notAllowListed: not listed",
      "  fix (Exchange administrator): Set-OrganizationConfig ...",
      "  health          atRisk",
      "    - EWS shuts down in 50 days",
    ]);
  });

  it("offboarding: what each step did (offboardTenant's output), the mailboxes disconnected, how to restore", () => {
    const output = {
      host: "acme.example",
      outcome: "offboarded",
      offboardedAt: "2026-12-02T10:00:00Z",
      creatio: { actions: ["unlinked-mail-server", "deleted-oauth-application"], linkedToOtherClientId: null, note: null },
      exchange: { mode: "manage", tenantId: "t", actions: [], note: "EWS_ACCESS is check: run Set-OrganizationConfig -EwsAllowedAppIDs @{Remove=\"app-1\"}" },
      application: { uniqueName: "creatio-o365-acme--example", appId: "app-1", outcome: "deleted", restorableUntil: "2027-01-01T10:00:00Z" },
      keyVault: { secretName: "creatio-o365-acme--example", outcome: "deleted", offboardedAt: "2026-12-02T10:00:00Z", deletedOn: "2026-12-02T10:00:00Z", scheduledPurgeDate: "2027-03-02T10:00:00Z" },
    };
    expect(offboardSummary("acme.example", output, { offboarded: { restore: "az keyvault secret recover ...; restore the app in Entra; POST /api/tenants again" } }).split("\n")).toEqual([
      "offboarded acme.example",
      "  Creatio     unlinked-mail-server, deleted-oauth-application",
      '  Exchange    nothing removed: EWS_ACCESS is check: run Set-OrganizationConfig -EwsAllowedAppIDs @{Remove="app-1"}',
      "  Entra app   deleted (app-1), restorable until 2027-01-01T10:00:00Z",
      "  Key Vault   secret creatio-o365-acme--example deleted, recoverable until 2027-03-02T10:00:00Z",
      "  Every user's Office 365 mailbox in that Creatio is disconnected.",
      "  restore: az keyvault secret recover ...; restore the app in Entra; POST /api/tenants again",
    ]);
  });

  it("offboarding with an output of another shape: each field", () => {
    expect(offboardSummary("acme.example", { host: "acme.example", removed: "all", restoreBy: "2027-01-01" })).toBe("offboarded acme.example\n  removed: all\n  restoreBy: 2027-01-01");
  });
});

describe("rotation plan (GET /api/rotation-plan contract)", () => {
  const plan = {
    generatedAt: "2026-12-02T10:00:00.000Z",
    rotateDaysBeforeExpiry: 30,
    sites: [
      { host: "later.example", due: false, reason: null, creatioSecretExpiresOn: "2028-06-01T00:00:00Z", dueOn: "2028-05-02T00:00:00Z", daysLeft: 546 },
      { host: "now.example", due: true, reason: "expiresSoon", creatioSecretExpiresOn: "2026-12-20T00:00:00Z", dueOn: "2026-11-20T00:00:00Z", daysLeft: 18 },
      { host: "never.example", due: true, reason: "creatioNeverConfigured", creatioSecretExpiresOn: null, dueOn: null, daysLeft: null },
    ],
    lastSweep: { at: "2026-12-02T03:00:00.000Z", managed: 3, due: 2, started: 1, skipped: 1, expired: 0, notMailReady: 1 },
  };

  it("lists due sites first, with reason, expiry, due day and days left, then the counts and the last sweep", () => {
    const lines = formatPlan(plan).split("\n");
    expect(lines[0]).toBe("Rotation plan at 2026-12-02T10:00:00.000Z (a site is due 30 days before Creatio's secret expires)");
    const rows = lines.filter((l) => /\.example/.test(l));
    expect(rows.map((r) => r.match(/(\w+)\.example/)![1])).toEqual(["never", "now", "later"]);
    expect(rows[1]).toMatch(/now\.example\s+│ yes\s+│ expiresSoon\s+│ 2026-12-20\s+│ 2026-11-20\s+│ 18/);
    expect(rows[2]).toMatch(/later\.example\s+│ no\s+│\s+│ 2028-06-01\s+│ 2028-05-02\s+│ 546/);
    expect(lines).toContain("2 of 3 site(s) due: the next sweep starts those rotations.");
    expect(lines[lines.length - 1]).toBe("Last sweep: 2026-12-02T03:00:00.000Z: 3 managed, 2 due, 1 started, 1 skipped, 0 expired, 1 not mail-ready.");
  });

  it("a failed sweep says so with its error; offboarded sites it left alone and an unchecked mail readiness are named", () => {
    expect(lastSweepLine({ at: "2026-12-02T03:00:00Z", outcome: "failed", error: "Key Vault 503", managed: 0, due: 0, started: 0, skipped: 0, expired: 0, notMailReady: 0, mailChecked: false, offboarded: 2, unreadable: 0 })).toBe(
      "Last sweep: 2026-12-02T03:00:00Z FAILED (Key Vault 503): 0 managed, 0 due, 0 started, 0 skipped, 0 expired, mail readiness not checked, 2 offboarded left alone.",
    );
  });

  it("says when no sweep has run yet, and when there is no site", () => {
    expect(lastSweepLine(null)).toBe("Last sweep: none recorded yet.");
    expect(formatPlan({ ...plan, sites: [], lastSweep: null })).toMatch(/No managed sites\.\nLast sweep: none recorded yet\.$/);
  });
});

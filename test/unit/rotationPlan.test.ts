import { isFreshEnough, lastRotationFromTags, nextRotationDueAt, planRotations, planSite, type ManagedSecret } from "../../src/domain/rotationPlan";
import { siteTagsSchema, type SiteTagsInput } from "../../src/domain/tags";
import { DAY, NOW } from "./rotationFakes";

function secret(host: string, expiresInDays: number | undefined, tags: Partial<SiteTagsInput> = {}): ManagedSecret {
  return {
    host,
    secretName: `creatio-o365-${host}`,
    expiresOn: expiresInDays === undefined ? undefined : new Date(NOW.getTime() + expiresInDays * DAY),
    // Creatio holds the current keyId unless a case says otherwise.
    tags: siteTagsSchema.parse({ site: host, appId: "a", appObjectId: "o", keyId: "k", creatioCredential: "c", mailServerId: "m", creatioSyncedKeyId: tags.keyId ?? "k", ...tags }),
  };
}

describe("which sites are due (ROTATE_DAYS_BEFORE_EXPIRY = 30)", () => {
  it("over expiries spread across 90 days, picks exactly those inside the window, the expired one included", () => {
    const spread = [-3, 0.5, 7, 29.99, 30, 30.01, 31, 45, 60, 75, 89, 90].map((d, i) => secret(`s${i}.example.com`, d));
    const plans = planRotations(spread, NOW, 30);
    const due = plans.filter((p) => p.due).map((p) => p.host);
    expect(due).toEqual(["s0.example.com", "s1.example.com", "s2.example.com", "s3.example.com", "s4.example.com"]);
    expect(plans.find((p) => p.host === "s0.example.com")).toMatchObject({ expired: true, reason: "expired", daysLeft: -3 });
    expect(plans.find((p) => p.host === "s4.example.com")).toMatchObject({ expired: false, reason: "expiresSoon", daysLeft: 30 });
    expect(plans.filter((p) => !p.due).every((p) => p.reason === undefined && !p.expired)).toBe(true);
  });

  it("a site whose last rotation failed is due even far from expiry (the sweep is its retry)", () => {
    expect(planSite(secret("f.example.com", 700, { rotationState: "failed" }), NOW, 30)).toMatchObject({ due: true, reason: "lastRotationFailed" });
    expect(planSite(secret("i.example.com", 700, { rotationState: "idle" }), NOW, 30)).toMatchObject({ due: false });
  });

  it("a rotation still under way is due, so a lost or terminated one is finished (a running one is skipped by the starter)", () => {
    expect(planSite(secret("g.example.com", 700, { rotationState: "grace-period" }), NOW, 30)).toMatchObject({ due: true, reason: "rotationUnfinished" });
    expect(planSite(secret("r.example.com", 700, { rotationState: "rotating" }), NOW, 30)).toMatchObject({ due: true, reason: "rotationUnfinished" });
  });

  it("a site whose Creatio holds another password than the current one is due (an onboarding re-run failed at Creatio)", () => {
    expect(planSite(secret("b.example.com", 700, { keyId: "k-new", creatioSyncedKeyId: "k-old" }), NOW, 30)).toMatchObject({ due: true, reason: "creatioBehind" });
    expect(planSite(secret("s.example.com", 700, { keyId: "k", creatioSyncedKeyId: "k" }), NOW, 30)).toMatchObject({ due: false });
  });

  it("a site whose Creatio never received a secret (onboarding failed at Creatio) is due, so the sweep delivers the one issued", () => {
    const plan = planSite(secret("n.example.com", 700, { keyId: "k", creatioSyncedKeyId: undefined }), NOW, 30);
    expect(plan).toMatchObject({ due: true, reason: "creatioNeverConfigured", creatioConfigured: false, expiresOn: undefined, daysLeft: null });
    expect(plan.currentExpiresOn?.toISOString()).toBe(new Date(NOW.getTime() + 700 * DAY).toISOString());
  });

  it("judges the secret Creatio holds, not Key Vault's newer one: a 20-day secret Creatio kept after a failed 730-day re-run is due, 19 days left", () => {
    const creatioExpires = new Date(NOW.getTime() + 19.5 * DAY).toISOString();
    const plan = planSite(secret("h.example.com", 729.9, { keyId: "k-730", creatioSyncedKeyId: "k-20", creatioSyncedExpiresOn: creatioExpires }), NOW, 30);
    expect(plan).toMatchObject({ due: true, reason: "expiresSoon", daysLeft: 19, creatioCurrent: false });
    expect(plan.expiresOn?.toISOString()).toBe(creatioExpires);
    expect(plan.nextRotationDueAt?.toISOString()).toBe(new Date(NOW.getTime() - 10.5 * DAY).toISOString());
  });

  it("never later than Key Vault's current version, and the current expiry when an older version's was not recorded", () => {
    const later = new Date(NOW.getTime() + 100 * DAY).toISOString();
    expect(planSite(secret("l.example.com", 50, { keyId: "k2", creatioSyncedKeyId: "k1", creatioSyncedExpiresOn: later }), NOW, 30).daysLeft).toBe(50);
    expect(planSite(secret("u.example.com", 50, { keyId: "k2", creatioSyncedKeyId: "k1" }), NOW, 30).daysLeft).toBe(50);
  });

  it("a secret without a recorded expiry is due rather than trusted forever", () => {
    expect(planSite(secret("n.example.com", undefined), NOW, 30)).toMatchObject({ due: true, reason: "expiresSoon", daysLeft: null, nextRotationDueAt: null });
  });

  it("the window follows the setting", () => {
    expect(planSite(secret("w.example.com", 10), NOW, 7).due).toBe(false);
    expect(planSite(secret("w.example.com", 10), NOW, 10).due).toBe(true);
  });

  it("orders soonest expiry first, no expiry last, ties by host", () => {
    const plans = planRotations([secret("b.example.com", 50), secret("z.example.com", undefined), secret("a.example.com", 50), secret("c.example.com", 2)], NOW, 30);
    expect(plans.map((p) => p.host)).toEqual(["c.example.com", "a.example.com", "b.example.com", "z.example.com"]);
  });

  it("next rotation due date is the expiry minus the window", () => {
    expect(nextRotationDueAt(new Date("2027-01-31T00:00:00Z"), 30)?.toISOString()).toBe("2027-01-01T00:00:00.000Z");
    expect(nextRotationDueAt(undefined, 30)).toBeNull();
  });
});

describe("a secret fresh enough to deliver instead of issuing another", () => {
  const inDays = (d: number) => new Date(NOW.getTime() + d * DAY);
  it("a 20-day secret issued minutes ago is fresh, though inside the 30-day window", () => {
    expect(isFreshEnough(inDays(19.99), 20, NOW, 30)).toBe(true);
    expect(isFreshEnough(inDays(17.9), 20, NOW, 30)).toBe(false);
  });
  it("a 730-day lifetime asks for more than the window: 19 days left is not fresh, 31 is", () => {
    expect(isFreshEnough(inDays(19), 730, NOW, 30)).toBe(false);
    expect(isFreshEnough(inDays(31), 730, NOW, 30)).toBe(true);
  });
  it("an expired or unknown expiry is never fresh", () => {
    expect(isFreshEnough(inDays(-1), 1, NOW, 30)).toBe(false);
    expect(isFreshEnough(undefined, 20, NOW, 30)).toBe(false);
  });
});

describe("last rotation, derived from the tags", () => {
  const base = { site: "x", appId: "a", appObjectId: "o", keyId: "k2", creatioCredential: "c", mailServerId: "m" };
  it("onboarded only: none", () => {
    expect(lastRotationFromTags(siteTagsSchema.parse({ ...base, creatioSyncedAt: "2026-01-01T00:00:00Z" }))).toBeNull();
  });
  it("succeeded: when Creatio received the new secret", () => {
    const tags = siteTagsSchema.parse({ ...base, previousKeyId: "k1", creatioSyncedAt: "2026-02-01T00:00:00Z", rotationUpdatedAt: "2026-02-02T00:00:00Z" });
    expect(lastRotationFromTags(tags)).toEqual({ at: "2026-02-01T00:00:00Z", outcome: "succeeded" });
    expect(lastRotationFromTags({ ...tags, rotationState: "grace-period" })).toEqual({ at: "2026-02-01T00:00:00Z", outcome: "succeeded" });
  });
  it("failed and running: when the state changed", () => {
    const tags = siteTagsSchema.parse({ ...base, rotationState: "failed", rotationUpdatedAt: "2026-03-01T00:00:00Z" });
    expect(lastRotationFromTags(tags)).toEqual({ at: "2026-03-01T00:00:00Z", outcome: "failed" });
    expect(lastRotationFromTags({ ...tags, rotationState: "rotating" })).toEqual({ at: "2026-03-01T00:00:00Z", outcome: "running" });
  });
});

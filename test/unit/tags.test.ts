import { MAX_TAGS, assertTagsFreeOf, decodeSiteTags, encodeSiteTags, mergeSiteTags, siteTagsSchema } from "../../src/domain/tags";

const base = {
  site: "acme.creatio.com",
  appId: "11111111-1111-4111-8111-111111111111",
  appObjectId: "22222222-2222-4222-8222-222222222222",
  keyId: "33333333-3333-4333-8333-333333333333",
  creatioCredential: "creatio-api-acme",
  mailServerId: "4bde7ec8-061f-46a3-ab24-49f5ec9cce8b",
};

describe("site tag codec", () => {
  it("round-trips and defaults the rotation state, packed into the rotation tag", () => {
    const tags = encodeSiteTags(base);
    expect(tags).toEqual({ ...base, rotation: JSON.stringify({ state: "idle" }) });
    expect(decodeSiteTags(tags)).toEqual({ ok: true, tags: { ...base, rotationState: "idle" } });
  });

  it("fits Key Vault's 15 tags of 512 characters with every field set at its longest, leaving room for an admin's own", () => {
    const at = "2026-11-27T10:00:00.000+00:00";
    const guid = "g".repeat(64);
    const full = {
      ...base,
      servicePrincipalId: guid,
      previousKeyId: guid,
      scopes: "EWS.AccessAsUser.All User.Read offline_access",
      permissionProfile: "p".repeat(63),
      tenantId: guid,
      creatioSyncedAt: at,
      creatioSyncedKeyId: guid,
      creatioSyncedExpiresOn: at,
      rotationState: "grace-period" as const,
      rotationUpdatedAt: at,
      lastRun: { kind: "rotate" as const, outcome: "failed" as const, step: "s".repeat(64), at, instanceId: "i".repeat(200) },
      creatioCheck: { at, state: "unreachable" as const, clientId: guid, detail: "d".repeat(200) },
      mailReadiness: { ews: "notAllowListed" as const, checkedAt: at, reason: "r".repeat(300) },
    };
    expect(Object.keys(full).length).toBe(Object.keys(siteTagsSchema.shape).length);
    const tags = encodeSiteTags(full);
    expect(Object.keys(tags).length).toBeLessThanOrEqual(MAX_TAGS - 2);
    expect(decodeSiteTags(tags)).toEqual({ ok: true, tags: full });
  });

  it("stores previousKeyId in the rotation tag and mail readiness in the mail tag; reads a flat previousKeyId an earlier version wrote", () => {
    const prev = "44444444-4444-4444-8444-444444444444";
    const mailReadiness = { ews: "allowed" as const, checkedAt: "2026-11-27T10:00:00.000Z" };
    const tags = encodeSiteTags({ ...base, previousKeyId: prev, mailReadiness });
    expect(tags.previousKeyId).toBeUndefined();
    expect(JSON.parse(tags.rotation)).toEqual({ state: "idle", prev });
    expect(JSON.parse(tags.mail)).toEqual(mailReadiness);
    expect(decodeSiteTags(tags)).toEqual({ ok: true, tags: { ...base, rotationState: "idle", previousKeyId: prev, mailReadiness } });
    const legacy = { ...encodeSiteTags(base), previousKeyId: prev };
    expect(decodeSiteTags(legacy)).toMatchObject({ ok: true, tags: { previousKeyId: prev } });
    const merged = mergeSiteTags(legacy, { mailReadiness });
    expect(merged.previousKeyId).toBeUndefined();
    expect(JSON.parse(merged.rotation)).toEqual({ state: "idle", prev });
  });

  it("stores the permission profile with the granted scopes in one `permissions` tag; reads the flat `scopes` tag of earlier versions", () => {
    const tags = encodeSiteTags({ ...base, scopes: "Mail.Send User.Read", permissionProfile: "creatio-graph" });
    expect(tags.scopes).toBeUndefined();
    expect(JSON.parse(tags.permissions)).toEqual({ profile: "creatio-graph", scopes: "Mail.Send User.Read" });
    expect(Object.keys(tags).sort()).toEqual([...Object.keys(base), "permissions", "rotation"].sort());
    const legacy = { ...encodeSiteTags(base), scopes: "EWS.AccessAsUser.All User.Read" };
    expect(decodeSiteTags(legacy)).toMatchObject({ ok: true, tags: { scopes: "EWS.AccessAsUser.All User.Read" } });
    expect((decodeSiteTags(legacy) as { tags: object }).tags).not.toHaveProperty("permissionProfile");
    const merged = mergeSiteTags(legacy, { permissionProfile: "creatio-ews" });
    expect(merged.scopes).toBeUndefined();
    expect(JSON.parse(merged.permissions)).toEqual({ profile: "creatio-ews", scopes: "EWS.AccessAsUser.All User.Read" });
    // A rotation writes no profile: the recorded one stays.
    expect(JSON.parse(mergeSiteTags(merged, { keyId: "k2" }).permissions)).toEqual({ profile: "creatio-ews", scopes: "EWS.AccessAsUser.All User.Read" });
  });

  it("reads the flat tags earlier versions wrote, and drops them on the next write", () => {
    const legacy = { ...base, creatioSyncedKeyId: base.keyId, creatioSyncedAt: "2026-11-27T10:00:00.000Z", rotationState: "failed", rotationUpdatedAt: "2026-11-28T10:00:00.000Z", instanceId: "onboard-x" };
    const decoded = decodeSiteTags(legacy);
    expect(decoded).toEqual({ ok: true, tags: { ...base, creatioSyncedKeyId: base.keyId, creatioSyncedAt: "2026-11-27T10:00:00.000Z", rotationState: "failed", rotationUpdatedAt: "2026-11-28T10:00:00.000Z" } });
    const merged = mergeSiteTags(legacy, { rotationState: "idle" });
    expect(Object.keys(merged).sort()).toEqual([...Object.keys(base), "creatio", "rotation"].sort());
    expect(JSON.parse(merged.creatio)).toEqual({ keyId: base.keyId, at: "2026-11-27T10:00:00.000Z" });
  });

  it("reports a packed tag that is not JSON instead of guessing", () => {
    expect(decodeSiteTags({ ...encodeSiteTags(base), creatio: "{oops" })).toEqual({ ok: false, problem: "tag creatio is not a JSON object" });
  });

  it("rejects a value over 512 characters", () => {
    expect(() => encodeSiteTags({ ...base, creatioCredential: "x".repeat(513) })).toThrow(/512/);
  });

  it("reports tags that are not a site's", () => {
    const decoded = decodeSiteTags({ site: "x" });
    expect(decoded.ok).toBe(false);
  });

  it("merges: sets, removes with null, keeps an admin's own tags", () => {
    const existing = { ...encodeSiteTags({ ...base, previousKeyId: "44444444-4444-4444-8444-444444444444" }), costCentre: "42" };
    const merged = mergeSiteTags(existing, { creatioSyncedAt: "2026-11-27T10:00:00.000Z", previousKeyId: null });
    expect(JSON.parse(merged.creatio)).toEqual({ at: "2026-11-27T10:00:00.000Z" });
    expect(merged.previousKeyId).toBeUndefined();
    expect(merged.costCentre).toBe("42");
    expect(merged.keyId).toBe(base.keyId);
  });

  it("refuses tags that would carry the secret", () => {
    expect(() => assertTagsFreeOf({ a: "xx-SECRET-xx" }, "SECRET")).toThrow(/secret/);
    expect(() => assertTagsFreeOf({ a: "fine" }, "SECRET")).not.toThrow();
  });
});

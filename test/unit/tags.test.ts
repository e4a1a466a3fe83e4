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
  it("round-trips and defaults the rotation state", () => {
    const tags = encodeSiteTags(base);
    expect(tags).toEqual({ ...base, rotationState: "idle" });
    expect(decodeSiteTags(tags)).toEqual({ ok: true, tags: { ...base, rotationState: "idle" } });
  });

  it("fits Key Vault's 15-tag limit with every field set", () => {
    expect(Object.keys(siteTagsSchema.shape).length).toBeLessThanOrEqual(MAX_TAGS);
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
    expect(merged.creatioSyncedAt).toBe("2026-11-27T10:00:00.000Z");
    expect(merged.previousKeyId).toBeUndefined();
    expect(merged.costCentre).toBe("42");
    expect(merged.keyId).toBe(base.keyId);
  });

  it("refuses tags that would carry the secret", () => {
    expect(() => assertTagsFreeOf({ a: "xx-SECRET-xx" }, "SECRET")).toThrow(/secret/);
    expect(() => assertTagsFreeOf({ a: "fine" }, "SECRET")).not.toThrow();
  });
});

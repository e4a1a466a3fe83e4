import { beginRotation } from "../../src/activities/beginRotation";
import { recordSiteState } from "../../src/activities/recordSiteState";
import { removeOldPassword } from "../../src/activities/removeOldPassword";
import { removeStrayPasswords } from "../../src/activities/removeStrayPasswords";
import { decodeSiteTags } from "../../src/domain/tags";
import { secretNameFor } from "../../src/domain/site";
import { activityDeps, DAY, fakeGraphApp, MemoryVault, NOW } from "./rotationFakes";

const HOST = "acme.creatio.com";
const OBJ = `obj-${HOST}`;
const tagsOf = (vault: MemoryVault) => {
  const d = decodeSiteTags(vault.latest(secretNameFor(HOST))!.properties.tags);
  if (!d.ok) throw new Error(d.problem);
  return d.tags;
};
const iso = (days: number) => new Date(NOW.getTime() + days * DAY).toISOString();

describe("beginRotation", () => {
  it("marks rotating and reports the current keyId, its lifetime and whether it is due", async () => {
    const vault = new MemoryVault();
    vault.site(HOST, new Date(NOW.getTime() + 10 * DAY), { keyId: "k1", creatioSyncedKeyId: "k1" });
    const { graph } = fakeGraphApp(OBJ, [{ keyId: "k1", startDateTime: iso(-355), endDateTime: iso(10) }]);
    const site = await beginRotation({ host: HOST, instanceId: `rotate-${HOST}` }, activityDeps(vault, graph));
    expect(site).toMatchObject({ keyId: "k1", creatioHeldKeyId: "k1", currentDue: true, currentFresh: false, currentExists: true, secretLifetimeDays: 365 });
    expect(tagsOf(vault)).toMatchObject({ rotationState: "rotating", rotationUpdatedAt: NOW.toISOString() });
  });

  it("after a failed rotation, records the keyId Creatio still holds as previousKeyId before anything is issued", async () => {
    const vault = new MemoryVault();
    vault.site(HOST, new Date(NOW.getTime() + 700 * DAY), { keyId: "k2", previousKeyId: "k0", creatioSyncedKeyId: "k1", rotationState: "failed" });
    const { graph } = fakeGraphApp(OBJ, [{ keyId: "k1" }, { keyId: "k2", startDateTime: iso(-30), endDateTime: iso(700) }]);
    const site = await beginRotation({ host: HOST, instanceId: `rotate-${HOST}` }, activityDeps(vault, graph));
    expect(site).toMatchObject({ keyId: "k2", creatioHeldKeyId: "k1", previousKeyId: "k1", currentDue: false, currentFresh: true });
    expect(tagsOf(vault)).toMatchObject({ previousKeyId: "k1", creatioSyncedKeyId: "k1", rotationState: "rotating" });
  });

  it("a 20-day secret a failed run issued minutes ago is fresh to deliver, though inside the 30-day window", async () => {
    const vault = new MemoryVault();
    vault.site(HOST, new Date(NOW.getTime() + 19.99 * DAY), { keyId: "k2", creatioSyncedKeyId: undefined, rotationState: "failed" });
    const { graph } = fakeGraphApp(OBJ, [{ keyId: "k2", startDateTime: iso(-0.01), endDateTime: iso(19.99) }]);
    const site = await beginRotation({ host: HOST, instanceId: `rotate-${HOST}` }, activityDeps(vault, graph));
    expect(site).toMatchObject({ keyId: "k2", creatioHeldKeyId: null, previousKeyId: null, currentDue: true, currentFresh: true, secretLifetimeDays: 20 });
  });

  it("refuses a site that is not managed here", async () => {
    const vault = new MemoryVault();
    vault.seed(secretNameFor(HOST), "x", { contentType: "text/plain" });
    const { graph } = fakeGraphApp(OBJ, []);
    await expect(beginRotation({ host: HOST, instanceId: "i" }, activityDeps(vault, graph))).rejects.toThrow(/not one of ours/);
    await expect(beginRotation({ host: "none.example.com", instanceId: "i" }, activityDeps(vault, graph))).rejects.toThrow(/not managed/);
  });
});

describe("password removal never touches the current password or the one Creatio holds", () => {
  it("removeOldPassword removes by keyId once; a replay's removal is refused by Graph (no such keyId) and reports already-gone", async () => {
    const vault = new MemoryVault();
    vault.site(HOST, undefined, { keyId: "k2", creatioSyncedKeyId: "k2", previousKeyId: "k1" });
    const app = fakeGraphApp(OBJ, [{ keyId: "k1" }, { keyId: "k2" }]);
    const deps = activityDeps(vault, app.graph);
    expect(await removeOldPassword({ host: HOST, appObjectId: OBJ, keyId: "k1" }, deps)).toEqual({ keyId: "k1", outcome: "removed", remaining: [{ keyId: "k2", displayName: null }] });
    expect(await removeOldPassword({ host: HOST, appObjectId: OBJ, keyId: "k1" }, deps)).toEqual({ keyId: "k1", outcome: "already-gone", remaining: [{ keyId: "k2", displayName: null }] });
    expect(app.removals).toEqual(["k1"]);
  });

  it("removeOldPassword keeps a keyId that Key Vault or Creatio still uses", async () => {
    const vault = new MemoryVault();
    vault.site(HOST, undefined, { keyId: "k2", creatioSyncedKeyId: "k1" });
    const app = fakeGraphApp(OBJ, [{ keyId: "k1" }, { keyId: "k2" }]);
    const deps = activityDeps(vault, app.graph);
    expect(await removeOldPassword({ host: HOST, appObjectId: OBJ, keyId: "k1" }, deps)).toMatchObject({ outcome: "kept-in-use" });
    expect(await removeOldPassword({ host: HOST, appObjectId: OBJ, keyId: "k2" }, deps)).toMatchObject({ outcome: "kept-in-use" });
    expect(app.removals).toEqual([]);
  });

  it("removeStrayPasswords removes every other password, keeping current and Creatio's", async () => {
    const vault = new MemoryVault();
    vault.site(HOST, undefined, { keyId: "k3", creatioSyncedKeyId: "k2" });
    const app = fakeGraphApp(OBJ, [
      { keyId: "k1", displayName: "creatio-o365-oauth rotate-acme 2026 #dead" },
      { keyId: "k2" },
      { keyId: "k3" },
      { keyId: "k4", displayName: "manual" },
      { keyId: "k5" },
    ]);
    const result = await removeStrayPasswords({ host: HOST, appObjectId: OBJ }, activityDeps(vault, app.graph));
    expect(result.removed.map((r) => r.keyId)).toEqual(["k1", "k4", "k5"]);
    expect(result.kept).toEqual(["k2", "k3"]);
    expect(app.passwords.map((p) => p.keyId)).toEqual(["k2", "k3"]);
  });
});

describe("removal is verified by reading the app back", () => {
  it("a removePassword that answers 204 but leaves the password listed is a failure, not 'removed'", async () => {
    const vault = new MemoryVault();
    vault.site(HOST, undefined, { keyId: "k2", creatioSyncedKeyId: "k2" });
    const app = fakeGraphApp(OBJ, [{ keyId: "k1" }, { keyId: "k2" }], (keyId) => (keyId === "k1" ? { status: 204 } : undefined));
    await expect(removeOldPassword({ host: HOST, appObjectId: OBJ, keyId: "k1" }, activityDeps(vault, app.graph))).rejects.toThrow(/still lists that password/);
  });

  it("a 400 other than 'no such keyId' (the password is still listed) is a failure; 404 is already gone", async () => {
    const vault = new MemoryVault();
    vault.site(HOST, undefined, { keyId: "k2", creatioSyncedKeyId: "k2" });
    const refused = fakeGraphApp(OBJ, [{ keyId: "k1" }, { keyId: "k2" }], () => ({ status: 400, body: { error: { code: "Request_BadRequest", message: "Insufficient privileges for this password" } } }));
    await expect(removeOldPassword({ host: HOST, appObjectId: OBJ, keyId: "k1" }, activityDeps(vault, refused.graph))).rejects.toThrow(/Insufficient privileges/);
    await expect(removeStrayPasswords({ host: HOST, appObjectId: OBJ }, activityDeps(vault, refused.graph))).rejects.toThrow(/Insufficient privileges/);
    const gone = fakeGraphApp(OBJ, [{ keyId: "k1" }, { keyId: "k2" }], () => ({ status: 404, body: { error: { code: "Request_ResourceNotFound", message: "gone" } } }));
    expect(await removeOldPassword({ host: HOST, appObjectId: OBJ, keyId: "k1" }, activityDeps(vault, gone.graph))).toEqual({ keyId: "k1", outcome: "already-gone" });
  });
});

test("recordSiteState writes state, previousKeyId and the last run on the current version, no new version", async () => {
  const vault = new MemoryVault();
  vault.site(HOST, undefined, { keyId: "k2", previousKeyId: "k0" });
  const { graph } = fakeGraphApp(OBJ, []);
  await recordSiteState({ host: HOST, rotationState: "grace-period", previousKeyId: "k1" }, activityDeps(vault, graph));
  expect(tagsOf(vault)).toMatchObject({ rotationState: "grace-period", previousKeyId: "k1", keyId: "k2", rotationUpdatedAt: NOW.toISOString() });
  await recordSiteState({ host: HOST, rotationState: "idle", lastRun: { kind: "rotate", outcome: "succeeded", instanceId: "rotate-x" } }, activityDeps(vault, graph));
  expect(tagsOf(vault)).toMatchObject({ rotationState: "idle", previousKeyId: "k1", lastRun: { kind: "rotate", outcome: "succeeded", instanceId: "rotate-x", at: NOW.toISOString() } });
  expect(vault.versions.get(secretNameFor(HOST))).toHaveLength(1);
  // A site with no secret yet (an onboarding that failed before issuing one): nothing to record.
  expect(await recordSiteState({ host: "none.example.com", lastRun: { kind: "onboard", outcome: "failed", step: "checkCreatioSite" } }, activityDeps(vault, graph))).toMatchObject({ recorded: false });
});

/**
 * Upstream calls of one rotation (issue 12; docs/architecture.md, "Calls per rotation"): the
 * rotateSecret orchestrator driven step by step with the real activities behind it, against the
 * in-memory Key Vault, the real Graph client with its network recorded, and a Creatio client that
 * counts its calls. Counts and exact URLs, never timings.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import type { OrchestrationContext } from "durable-functions";
import { rotateSecret } from "../../src/orchestrators/rotateSecret";
import { beginRotation } from "../../src/activities/beginRotation";
import { issueClientSecret, passwordDisplayName } from "../../src/activities/issueClientSecret";
import { configureCreatio } from "../../src/activities/configureCreatio";
import { recordSiteState } from "../../src/activities/recordSiteState";
import { removeOldPassword } from "../../src/activities/removeOldPassword";
import { removeStrayPasswords } from "../../src/activities/removeStrayPasswords";
import type { ActivityDeps } from "../../src/activities/shared";
import type { CreatioClient } from "../../src/clients/creatio";
import { decodeSiteTags } from "../../src/domain/tags";
import { secretNameFor } from "../../src/domain/site";
import { recordingGraph, type RecordedCall, type Reply } from "./graphRecorder";
import { DAY, MemoryVault, NOW } from "./rotationFakes";

const HOST = "acme.creatio.com";
const OBJ = `obj-${HOST}`;
const SECRET = secretNameFor(HOST);
const MAIL_SERVER = "4bde7ec8-061f-46a3-ab24-49f5ec9cce8b";
const iso = (days: number) => new Date(NOW.getTime() + days * DAY).toISOString();

interface Password {
  keyId: string;
  displayName?: string | null;
  startDateTime?: string;
  endDateTime?: string;
}

/** One application's passwords behind the recording Graph client: GET, addPassword, removePassword. */
function graphApp(passwords: Password[]) {
  let added = 0;
  const route = (call: RecordedCall): Reply => {
    if (call.method === "GET" && call.path.startsWith(`/applications/${OBJ}?`)) return { status: 200, body: { id: OBJ, appId: `app-${HOST}`, passwordCredentials: passwords } };
    if (call.method === "POST" && call.path === `/applications/${OBJ}/addPassword`) {
      const body = call.body as { passwordCredential: { displayName: string; endDateTime: string } };
      const password = { keyId: `k-new-${++added}`, displayName: body.passwordCredential.displayName, startDateTime: NOW.toISOString(), endDateTime: body.passwordCredential.endDateTime };
      passwords.push(password);
      return { status: 200, body: { ...password, secretText: `value-${added}`, hint: "val" } };
    }
    if (call.method === "POST" && call.path === `/applications/${OBJ}/removePassword`) {
      const keyId = (call.body as { keyId: string }).keyId;
      const i = passwords.findIndex((p) => p.keyId === keyId);
      if (i < 0) return { status: 400, body: { error: { code: "InvalidValue", message: `No password credential with keyId '${keyId}'.` } } };
      passwords.splice(i, 1);
      return { status: 204 };
    }
    return { status: 404, body: { error: { code: "Request_ResourceNotFound", message: "not found" } } };
  };
  const { graph, calls } = recordingGraph(route);
  return { graph, calls, passwords };
}

/** Key Vault operations as `op name`, counted at the SecretStore boundary (what the SDK sends one request each for). */
function countingVault(vault: MemoryVault): string[] {
  const ops: string[] = [];
  // A call the vault makes inside one of these is not the activity's: only the outermost counts.
  // Per async context, so two calls an activity makes at once both count.
  const nested = new AsyncLocalStorage<true>();
  for (const op of ["getSecret", "setSecret", "updateSecretProperties"] as const) {
    const original = vault[op] as (...args: unknown[]) => Promise<unknown>;
    (vault as unknown as Record<string, unknown>)[op] = async (...args: unknown[]) => {
      if (!nested.getStore()) ops.push(`${op} ${String(args[0])}`);
      return nested.run(true, () => original(...args));
    };
  }
  return ops;
}

/** A Creatio whose mail server is linked to this app's row: what a rotation finds. Counts client calls. */
function countingCreatio(appId: string) {
  const calls: string[] = [];
  const row = { Id: "oauth-row", Name: "Office365OAuthAuthenticator", AppClassName: "Office365OAuthAuthenticator", ClientClassName: "Office365OAuthClient", ClientId: appId };
  const client = {
    odataRoot: async () => (calls.push("odataRoot"), "/0/odata"),
    mailServerLink: async (id: string) => (calls.push(`mailServerLink ${id}`), { mailServer: { Id: id, OAuthApplicationId: row.Id }, application: row }),
    get: async (path: string) => (calls.push(`GET ${path}`), { status: 200, body: { value: [row] } }),
    post: async (path: string) => (calls.push(`POST ${path}`), { status: 201, body: row }),
    patch: async (path: string) => (calls.push(`PATCH ${path}`), { status: 204, body: undefined }),
  } as unknown as CreatioClient;
  return { client, calls };
}

/** Runs rotateSecret to its end, each activity for real; timers fire at once (the clock moves to them). */
async function runRotation(deps: ActivityDeps, gracePeriodHours: number) {
  const activities: Record<string, (input: any) => Promise<unknown>> = {
    beginRotation: (i) => beginRotation(i, deps),
    issueClientSecret: (i) => issueClientSecret(i, deps),
    configureCreatio: (i) => configureCreatio(i, deps),
    recordSiteState: (i) => recordSiteState(i, deps),
    removeOldPassword: (i) => removeOldPassword(i, deps),
    removeStrayPasswords: (i) => removeStrayPasswords(i, deps),
  };
  let now = NOW;
  const ran: string[] = [];
  const context = {
    log: () => undefined,
    error: () => undefined,
    warn: () => undefined,
    df: {
      instanceId: `rotate-${HOST}`,
      isReplaying: false,
      get currentUtcDateTime() {
        return now;
      },
      getInput: () => ({ host: HOST, gracePeriodHours, trigger: "sweep" }),
      setCustomStatus: () => undefined,
      callActivity: (name: string, input: unknown) => ({ kind: "activity", name, input }),
      callActivityWithRetry: (name: string, _retry: unknown, input: unknown) => ({ kind: "activity", name, input }),
      createTimer: (fireAt: Date) => ({ kind: "timer", fireAt }),
    },
  } as unknown as OrchestrationContext;
  const gen = rotateSecret(context) as Generator<any, any, unknown>;
  let next = gen.next();
  while (!next.done) {
    const task = next.value as { kind: string; name: string; input: unknown; fireAt: Date };
    if (task.kind === "timer") {
      now = task.fireAt;
      next = gen.next(undefined);
      continue;
    }
    ran.push(task.name);
    // JSON round trip: what Durable stores between steps (and proof that inputs and outputs are plain data).
    let result: unknown;
    try {
      result = JSON.parse(JSON.stringify((await activities[task.name]!(JSON.parse(JSON.stringify(task.input)))) ?? null));
    } catch (error) {
      next = gen.throw(error);
      continue;
    }
    next = gen.next(result);
  }
  return { output: next.value, ran };
}

function dueSite(tags: Record<string, string> = {}, extra: Password[] = []) {
  const vault = new MemoryVault();
  vault.site(HOST, new Date(NOW.getTime() + 10 * DAY), { keyId: "k1", creatioSyncedKeyId: "k1", previousKeyId: "k0", ...tags });
  const app = graphApp([{ keyId: "k1", displayName: passwordDisplayName(`onboard-${HOST}`, "2025-12-02T12:00:00.000Z", "aa"), startDateTime: iso(-355), endDateTime: iso(10) }, ...extra]);
  const kv = countingVault(vault);
  const creatio = countingCreatio(`app-${HOST}`);
  const deps: ActivityDeps = {
    graph: app.graph,
    secrets: vault,
    creatio: () => creatio.client,
    now: () => NOW,
    sleep: async () => undefined,
    rotateDaysBeforeExpiry: 30,
  };
  return { vault, app, kv, creatio, deps };
}

const graphCalls = (calls: RecordedCall[]) => calls.map((c) => `${c.method} ${c.path}`);

describe("one rotation's upstream calls", () => {
  it("grace period 0: 5 activities; Graph: 1 read of the app, addPassword, removePassword and its verifying read; Key Vault: 5 reads of the site's secret, 2 of the credential, 4 writes", async () => {
    const { vault, app, kv, creatio, deps } = dueSite();
    const { output, ran } = await runRotation(deps, 0);
    expect(output).toMatchObject({ outcome: "succeeded", issuedNewSecret: true, keyId: "k-new-1", previousKeyId: "k1", oldPassword: { keyId: "k1", outcome: "removed" }, strayPasswordsRemoved: [] });

    expect(ran).toEqual(["beginRotation", "issueClientSecret", "configureCreatio", "removeOldPassword", "removeStrayPasswords"]);
    expect(graphCalls(app.calls)).toEqual([
      `GET /applications/${OBJ}?$select=id,passwordCredentials`,
      `POST /applications/${OBJ}/addPassword`,
      `POST /applications/${OBJ}/removePassword`,
      `GET /applications/${OBJ}?$select=id,passwordCredentials`,
    ]);
    expect(kv).toEqual([
      // beginRotation: the site, the Creatio credential (still bound?), the `rotating` mark
      `getSecret ${SECRET}`,
      "getSecret creatio-api",
      `updateSecretProperties ${SECRET}`,
      // issueClientSecret: the site again (a retried attempt finds what it stored), the new version
      `getSecret ${SECRET}`,
      `setSecret ${SECRET}`,
      // configureCreatio: the credential's value and the new version's, at once; the creatioSynced* tags
      "getSecret creatio-api",
      `getSecret ${SECRET}`,
      `updateSecretProperties ${SECRET}`,
      // removeOldPassword: the protected keyIds, right before removing
      `getSecret ${SECRET}`,
      // removeStrayPasswords: the protected keyIds again, then `idle` on that version
      `getSecret ${SECRET}`,
      `updateSecretProperties ${SECRET}`,
    ]);
    // The mail server's row first: the real client finds the OData root with it, so odataRoot() costs no request then.
    expect(creatio.calls).toEqual([`mailServerLink ${MAIL_SERVER}`, "odataRoot", "PATCH /OAuthApplications(oauth-row)"]);
    expect(app.calls.length + kv.length).toBe(15);

    const tags = decodeSiteTags(vault.latest(SECRET)!.properties.tags);
    expect(tags).toMatchObject({ ok: true, tags: { keyId: "k-new-1", creatioSyncedKeyId: "k-new-1", previousKeyId: "k1", rotationState: "idle", lastRun: { kind: "rotate", outcome: "succeeded" } } });
    expect(app.passwords.map((p) => p.keyId)).toEqual(["k-new-1"]);
  });

  it("with a grace period the grace-period state is recorded before the timer: one activity and two Key Vault calls more", async () => {
    const { app, kv, deps } = dueSite();
    const { ran } = await runRotation(deps, 24);
    expect(ran).toEqual(["beginRotation", "issueClientSecret", "configureCreatio", "recordSiteState", "removeOldPassword", "removeStrayPasswords"]);
    expect(app.calls).toHaveLength(4);
    expect(kv).toHaveLength(13);
  });
});

describe("issueClientSecret in a rotation reads the app only when Key Vault moved on since beginRotation", () => {
  const input = (version: string) => ({
    host: HOST,
    instanceId: `rotate-${HOST}`,
    runId: NOW.toISOString(),
    purpose: "rotate" as const,
    appId: `app-${HOST}`,
    appObjectId: OBJ,
    creatioCredentialSecretName: "creatio-api",
    mailServerId: MAIL_SERVER,
    secretLifetimeDays: 365,
    expected: { version, currentExists: true },
  });

  it("the version beginRotation saw: no read of the app, one addPassword", async () => {
    const { vault, app, deps } = dueSite();
    const version = vault.latest(SECRET)!.properties.version!;
    const result = await issueClientSecret(input(version), deps);
    expect(graphCalls(app.calls)).toEqual([`POST /applications/${OBJ}/addPassword`]);
    expect(result).toMatchObject({ keyId: "k-new-1", reused: false });
    expect(decodeSiteTags(vault.latest(SECRET)!.properties.tags)).toMatchObject({ ok: true, tags: { keyId: "k-new-1", previousKeyId: "k1" } });
  });

  it("retried after it stored the secret (Key Vault holds a newer version): reads the app, finds this run's password and reuses it", async () => {
    const { vault, app, deps } = dueSite();
    const version = vault.latest(SECRET)!.properties.version!;
    const first = await issueClientSecret(input(version), deps);
    app.calls.length = 0;
    const again = await issueClientSecret(input(version), deps);
    expect(graphCalls(app.calls)).toEqual([`GET /applications/${OBJ}?$select=id,appId,passwordCredentials`]);
    expect(again).toMatchObject({ keyId: first.keyId, version: first.version, reused: true });
    expect(app.passwords.map((p) => p.keyId)).toEqual(["k1", "k-new-1"]);
  });
});

describe("removal steps: exact calls, protected keyIds re-read each time", () => {
  it("removeOldPassword sends the removal and reads the app back once, returning that list; a replay is refused by Graph and reports already-gone", async () => {
    const { app, kv, deps } = dueSite({ keyId: "k2", creatioSyncedKeyId: "k2" }, [{ keyId: "k2", displayName: "creatio-o365-oauth rotate-x r #1" }]);
    const first = await removeOldPassword({ host: HOST, appObjectId: OBJ, keyId: "k1" }, deps);
    expect(first).toEqual({ keyId: "k1", outcome: "removed", remaining: [{ keyId: "k2", displayName: "creatio-o365-oauth rotate-x r #1" }] });
    expect(graphCalls(app.calls)).toEqual([`POST /applications/${OBJ}/removePassword`, `GET /applications/${OBJ}?$select=id,passwordCredentials`]);
    expect(kv).toEqual([`getSecret ${SECRET}`]);
    const replay = await removeOldPassword({ host: HOST, appObjectId: OBJ, keyId: "k1" }, deps);
    expect(replay).toMatchObject({ keyId: "k1", outcome: "already-gone" });
    expect(app.passwords.map((p) => p.keyId)).toEqual(["k2"]);
  });

  it("removeStrayPasswords with the list passed reads no app, still reads Key Vault, never removes what Creatio holds, and records idle on the version it read", async () => {
    const { vault, app, kv, deps } = dueSite();
    // Creatio still holds k1 (the tags say so) although the list passed says nothing of it: kept.
    app.passwords.push({ keyId: "k-stray" });
    const result = await removeStrayPasswords(
      {
        host: HOST,
        appObjectId: OBJ,
        passwords: [{ keyId: "k1", displayName: null }, { keyId: "k-stray", displayName: null }],
        finish: { lastRun: { kind: "rotate", outcome: "succeeded", instanceId: `rotate-${HOST}` }, previousKeyId: "k0" },
      },
      deps,
    );
    expect(result).toEqual({ removed: [{ keyId: "k-stray", displayName: null }], kept: ["k1"], recordedAt: NOW.toISOString() });
    expect(graphCalls(app.calls)).toEqual([`POST /applications/${OBJ}/removePassword`, `GET /applications/${OBJ}?$select=id,passwordCredentials`]);
    expect(kv).toEqual([`getSecret ${SECRET}`, `updateSecretProperties ${SECRET}`]);
    expect(vault.versions.get(SECRET)).toHaveLength(1);
    expect(decodeSiteTags(vault.latest(SECRET)!.properties.tags)).toMatchObject({ ok: true, tags: { rotationState: "idle", previousKeyId: "k0", lastRun: { kind: "rotate", outcome: "succeeded", at: NOW.toISOString() } } });
  });

  it("removeStrayPasswords refuses to remove anything, and records nothing, when the tags do not decode", async () => {
    const { vault, app, deps } = dueSite();
    const version = vault.latest(SECRET)!.properties.version!;
    await vault.updateSecretProperties(SECRET, version, { tags: { site: HOST, keyId: "k1" } });
    await expect(removeStrayPasswords({ host: HOST, appObjectId: OBJ, passwords: [{ keyId: "k1", displayName: null }], finish: { lastRun: { kind: "rotate", outcome: "succeeded" } } }, deps)).rejects.toThrow(/no password is removed/);
    expect(app.calls).toEqual([]);
  });
});

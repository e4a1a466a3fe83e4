/**
 * Issue 14 end to end: fail before creating anything, and never call a site healthy when Creatio's
 * mail will break. The built app in the local Functions host on Azurite, real SDK clients, the
 * Graph/Entra, Key Vault and Creatio emulators; each numbered test is one reproduction of the issue,
 * driven through the HTTP API as an administrator would. Each site is its own Creatio emulator.
 */
import { applicationUniqueNameFor, secretNameFor } from "../../src/domain/site";
import { decodeSiteTags, type SiteTags } from "../../src/domain/tags";
import { workingSiteHealth } from "../support/ewsCalendar";
import { JSON_HEADERS as json, startAppStack, type AppStack } from "../support/appStack";
import { waitForStatus } from "../host/helpers";
import { storeSiteCredential } from "../support/siteCredential";

let app: AppStack;
const api: AppStack["api"] = (path, init) => app.api(path, init);
const newCreatio = () => app.newCreatio();
const faults = (base: string, body?: object) => app.faults(base, body);
/** Reads work (the preflight passes), every OData write answers 503. */
const WRITES_FAIL = { serverErrorNext: 1000, serverErrorStatus: 503, match: "^(POST|PATCH) /0/odata/" };
/** Onboards through the API; unless the body names one, with a credential bound to the site's host. */
const onboard: AppStack["onboard"] = (body, timeoutMs) => app.onboard(body, timeoutMs);

const graphState = (): Promise<any> => app.emulatorState(app.stack.graphUrl);
async function appFor(siteHost: string): Promise<any | undefined> {
  return (await graphState()).applications.find((a: any) => a.uniqueName === applicationUniqueNameFor(siteHost));
}
/** Graph writes that would create or change the site's app registration (keyed by its uniqueName). */
function graphWritesFor(siteHost: string): number {
  return app.stack.servers.graph.requests.filter((q) => q.method !== "GET" && q.path.includes(applicationUniqueNameFor(siteHost))).length;
}
async function tagsOf(siteHost: string): Promise<SiteTags & { expiresOn?: Date }> {
  const s = await app.secrets.getSecret(secretNameFor(siteHost));
  const decoded = decodeSiteTags(s.properties.tags);
  if (!decoded.ok) throw new Error(decoded.problem);
  return { ...decoded.tags, expiresOn: s.properties.expiresOn };
}
async function hasSecret(siteHost: string): Promise<boolean> {
  return app.secrets.getSecret(secretNameFor(siteHost)).then(
    () => true,
    () => false,
  );
}
const creatioState = (base: string): Promise<any> => app.emulatorState(base);
const additions = (registration: any) =>
  app.stack.servers.graph.requests.filter((q) => q.method === "POST" && q.path === `/v1.0/applications/${registration.id}/addPassword` && q.status === 200).length;

/** Runs the sweep; its secret.expiry event per site. */
async function sweep(): Promise<Record<string, any>> {
  const events = await app.runSweep(20_000);
  return Object.fromEntries(events.filter((e) => e.event === "secret.expiry").map((e) => [e.site, e]));
}

beforeAll(async () => {
  app = await startAppStack({ env: { OLD_SECRET_GRACE_HOURS: "0.001" } });
}, 120_000);

afterAll(() => app?.close());

test("1. a failed delivery never hides Creatio's expiring secret: status, list and sweep log say 19 days, the failure stays visible", async () => {
  const site = await newCreatio();
  expect((await onboard({ creatioUrl: site.url, secretLifetimeDays: 20 })).runtimeStatus).toBe("Completed");
  const twentyDay = await tagsOf(site.host);

  // Creatio down: the re-run (asking 730 days) stops at the preflight, before anything is issued.
  await faults(site.url, { down: true });
  const failed = await onboard({ creatioUrl: site.url, secretLifetimeDays: 730 });
  await faults(site.url);
  expect(failed.runtimeStatus).toBe("Failed");
  expect(String(failed.output)).toMatch(/Step 1 of 7 \(checkCreatioSite\) failed/);
  expect((await tagsOf(site.host)).keyId).toBe(twentyDay.keyId);

  const row = (await api("/api/tenants")).body.find((t: any) => t.host === site.host);
  expect(row).toMatchObject({ daysLeft: 19, expiresOn: twentyDay.expiresOn!.toISOString(), rotation: { lastOutcome: "failed", lastFailedStep: "checkCreatioSite", due: true } });
  expect(row.health.state).toBe("atRisk");
  expect(row.health.problems.join(" ")).toMatch(/\(19 days\)/);
  const logged = await sweep();
  expect(logged[site.host]).toMatchObject({ daysLeft: 19, expiresOn: twentyDay.expiresOn!.toISOString(), creatioConfigured: true });
});

test("2. one Creatio under two URLs: the second onboarding stops before creating anything and names the first site; a Creatio reset shows as drift; takeOver replaces it and the first site says so", async () => {
  const site = await newCreatio();
  expect((await onboard({ creatioUrl: site.url })).runtimeStatus).toBe("Completed");
  const first = await appFor(site.host);
  const alias = site.url.replace("localhost", "127.0.0.1");
  const aliasHost = new URL(alias).host;

  const refused = await onboard({ creatioUrl: alias });
  expect(refused.runtimeStatus).toBe("Failed");
  expect(String(refused.output)).toMatch(new RegExp(`Step 1 of 7 \\(checkCreatioSite\\) failed: .*already linked to the application with client id ${first.appId}, which this app manages for the site ${site.host}.*"takeOver": true`));
  expect(graphWritesFor(aliasHost)).toBe(0);
  expect(await appFor(aliasHost)).toBeUndefined();
  expect(await hasSecret(aliasHost)).toBe(false);
  const ok = (await api(`/api/tenants/${site.host}`)).body;
  expect(ok.creatio).toMatchObject({ drift: false, check: { state: "ok", clientId: first.appId } });
  expect(ok.health).toMatchObject(workingSiteHealth());

  // Someone resets Creatio's mail settings: the tags still say what was written, status reads Creatio.
  await fetch(`${site.url}/_emulator/reset`, { method: "POST" });
  const reset = (await api(`/api/tenants/${site.host}`)).body;
  expect(reset.creatio).toMatchObject({ drift: true, check: { state: "drift" } });
  expect(reset.health.state).toBe("broken");
  expect(reset.health.problems.join(" ")).toMatch(/not linked to this app/);
  expect((await onboard({ creatioUrl: site.url })).runtimeStatus).toBe("Completed");
  expect((await api(`/api/tenants/${site.host}`)).body.health).toMatchObject(workingSiteHealth());

  // Taking over on purpose: the alias's app is linked, and the first site's status shows the drift.
  const taken = await onboard({ creatioUrl: alias, takeOver: true });
  expect(taken.runtimeStatus).toBe("Completed");
  expect((taken.output as any).creatio.tookOver).toBe(true);
  const second = await appFor(aliasHost);
  const linked = await creatioState(site.url);
  const mailServer = linked.MailServer.find((m: any) => m.OAuthApplicationId);
  expect(linked.OAuthApplications.find((r: any) => r.Id === mailServer.OAuthApplicationId).ClientId).toBe(second.appId);
  const displaced = (await api(`/api/tenants/${site.host}`)).body;
  expect(displaced.creatio).toMatchObject({ drift: true, check: { state: "drift", clientId: second.appId } });
  expect(displaced.health.problems.join(" ")).toMatch(new RegExp(`linked to another application \\(client id ${second.appId}\\)`));
}, 240_000);

test("3. a typo'd or unreachable Creatio URL creates nothing in Entra or Key Vault and is not listed as a site", async () => {
  const closed = await newCreatio();
  await closed.server.close();
  const [typo, unreachable] = await Promise.all([onboard({ creatioUrl: "https://creatio-typo.invalid" }), onboard({ creatioUrl: closed.url })]);
  expect(typo.runtimeStatus).toBe("Failed");
  // A name that does not resolve is final: one attempt, no retry.
  expect(String(typo.output)).toMatch(/Step 1 of 7 \(checkCreatioSite\) failed: The Creatio host creatio-typo\.invalid cannot be resolved \(ENOTFOUND\).*Nothing was created/);
  expect(unreachable.runtimeStatus).toBe("Failed");
  expect(String(unreachable.output)).toMatch(/Step 1 of 7 \(checkCreatioSite\) failed after 3 attempts: .*ECONNREFUSED/);
  for (const h of ["creatio-typo.invalid", closed.host]) {
    expect(graphWritesFor(h)).toBe(0);
    expect(await appFor(h)).toBeUndefined();
    expect(await hasSecret(h)).toBe(false);
  }
  const listed = (await api("/api/tenants")).body.map((t: any) => t.host);
  expect(listed).not.toContain("creatio-typo.invalid");
  expect(listed).not.toContain(closed.host);
  // The single-site status still tells what happened.
  const status = (await api(`/api/tenants/creatio-typo.invalid`)).body;
  expect(status.onboarding).toMatchObject({ runtimeStatus: "Failed", currentStep: { step: "checkCreatioSite", stepNumber: 1 } });
  expect(status.onboarding.error).toMatch(/cannot be resolved/);
  expect(status.health.state).toBe("broken");
  expect(status.health.problems[0]).toMatch(/creatio-typo\.invalid is not onboarded: the onboarding failed: Step 1 of \d \(checkCreatioSite\) failed: .*cannot be resolved.*POST \/api\/tenants again/);
}, 120_000);

test("4 and 5. a wrong Creatio password is tried once, creates nothing, and never replaces the site's stored credential; rotation keeps using the good one", async () => {
  const site = await newCreatio();
  expect((await onboard({ creatioUrl: site.url })).runtimeStatus).toBe("Completed");
  const before = await tagsOf(site.host);
  const goodCredential = before.creatioCredential;
  // Credentials an administrator stored for this site: a wrong password, and an account without CanManageMailServers.
  await app.secrets.setSecret("creatio-wrong-password", JSON.stringify({ username: "Supervisor", password: "not-the-password" }), { tags: { creatioSite: site.host } });
  await app.secrets.setSecret("creatio-sales", JSON.stringify({ username: "Sales", password: "Sales" }), { tags: { creatioSite: site.host } });
  const logins = () => site.server.requests.filter((q) => q.path === "/ServiceModel/AuthService.svc/Login").length;
  const loginsBefore = logins();

  const failed = await onboard({ creatioUrl: site.url, creatioCredentialSecretName: "creatio-wrong-password" });
  expect(failed.runtimeStatus).toBe("Failed");
  expect(String(failed.output)).toMatch(/Step 1 of 7 \(checkCreatioSite\) failed: Creatio at .* refused the credential in Key Vault secret creatio-wrong-password .*not locked out/);
  expect(logins() - loginsBefore).toBe(1);
  expect(String(failed.output)).not.toContain("not-the-password");
  const after = await tagsOf(site.host);
  expect(after).toMatchObject({ creatioCredential: goodCredential, keyId: before.keyId, lastRun: { kind: "onboard", outcome: "failed", step: "checkCreatioSite" } });

  // An account that may not change mail servers: refused before anything is created, also final.
  const sales = await onboard({ creatioUrl: site.url, creatioCredentialSecretName: "creatio-sales" });
  expect(String(sales.output)).toMatch(/may not change mail server settings: grant it the system operation CanManageMailServers/);

  const r = await api(`/api/tenants/${site.host}/rotate`, { method: "POST", headers: json, body: JSON.stringify({ gracePeriodHours: 0 }) });
  expect(r.status).toBe(202);
  expect((await waitForStatus(app.host.url, `rotate-${site.host}`, ["Completed", "Failed"], 60_000)).runtimeStatus).toBe("Completed");
  expect(await tagsOf(site.host)).toMatchObject({ creatioCredential: goodCredential, lastRun: { kind: "rotate", outcome: "succeeded" } });
}, 180_000);

test("6. a 20-day secret issued by a run that failed at Creatio is delivered by the retry, by POST or by the sweep, never issued again", async () => {
  const [viaPost, viaSweep] = await Promise.all([newCreatio(), newCreatio()]);
  await Promise.all([faults(viaPost.url, WRITES_FAIL), faults(viaSweep.url, WRITES_FAIL)]);
  const failed = await Promise.all([onboard({ creatioUrl: viaPost.url, secretLifetimeDays: 20 }), onboard({ creatioUrl: viaSweep.url, secretLifetimeDays: 20 })]);
  expect(failed.map((s) => s.runtimeStatus)).toEqual(["Failed", "Failed"]);
  await Promise.all([faults(viaPost.url), faults(viaSweep.url)]);
  const issued = { post: await tagsOf(viaPost.host), sweep: await tagsOf(viaSweep.host) };
  const listed = (await api("/api/tenants")).body.find((t: any) => t.host === viaPost.host);
  expect(listed).toMatchObject({ expiresOn: null, daysLeft: null, health: { state: "broken", mailStopsOn: null } });

  const deliveredOnce = async (site: { host: string }, keyId: string) => {
    const registration = await appFor(site.host);
    expect(additions(registration)).toBe(1);
    expect(registration.passwordCredentials.map((p: any) => p.keyId)).toEqual([keyId]);
    expect(await tagsOf(site.host)).toMatchObject({ keyId, creatioSyncedKeyId: keyId });
    expect((await api(`/api/tenants/${site.host}`)).body.health).toMatchObject({ state: "atRisk", daysUntilMailStops: 19 });
  };

  // By POST: the re-run delivers the 20-day secret the failed run issued.
  expect((await onboard({ creatioUrl: viaPost.url, secretLifetimeDays: 20 })).runtimeStatus).toBe("Completed");
  await deliveredOnce(viaPost, issued.post.keyId);

  // By the sweep: the site is due (Creatio holds none), and the rotation delivers rather than issues.
  const logged = await sweep();
  expect(logged[viaSweep.host]).toMatchObject({ outcome: "rotationStarted", reason: "expiresSoon", creatioConfigured: false });
  const rotated = await waitForStatus(app.host.url, `rotate-${viaSweep.host}`, ["Completed", "Failed"], 60_000);
  expect(rotated).toMatchObject({ runtimeStatus: "Completed", output: { issuedNewSecret: false, keyId: issued.sweep.keyId } });
  await deliveredOnce(viaSweep, issued.sweep.keyId);
}, 180_000);

test("8. a removePassword Graph refuses is a failed rotation, not a removed password; the next sweep removes it", async () => {
  const site = await newCreatio();
  expect((await onboard({ creatioUrl: site.url })).runtimeStatus).toBe("Completed");
  const old = await tagsOf(site.host);
  const registration = await appFor(site.host);
  await faults(app.stack.graphUrl, { serverErrorNext: 1000, serverErrorStatus: 400, match: `^POST /v1.0/applications/${registration.id}/removePassword` });
  try {
    expect((await api(`/api/tenants/${site.host}/rotate`, { method: "POST", headers: json, body: JSON.stringify({ gracePeriodHours: 0 }) })).status).toBe(202);
    const failed = await waitForStatus(app.host.url, `rotate-${site.host}`, ["Completed", "Failed"], 120_000);
    expect(failed.runtimeStatus).toBe("Failed");
    expect(String(failed.output)).toMatch(/removeOldPassword/);
  } finally {
    await faults(app.stack.graphUrl);
  }
  expect((await appFor(site.host)).passwordCredentials.map((p: any) => p.keyId)).toContain(old.keyId);
  const status = (await api(`/api/tenants/${site.host}`)).body;
  expect(status.rotation).toMatchObject({ lastOutcome: "failed", lastFailedStep: "removeOldPassword", state: "failed" });
  expect(status.health.state).toBe("atRisk");

  const logged = await sweep();
  expect(logged[site.host]).toMatchObject({ outcome: "rotationStarted", reason: "lastRotationFailed" });
  const done = await waitForStatus(app.host.url, `rotate-${site.host}`, ["Completed", "Failed"], 60_000);
  expect(done).toMatchObject({ runtimeStatus: "Completed", output: { issuedNewSecret: false, oldPassword: { keyId: old.keyId, outcome: "removed" } } });
  expect((await appFor(site.host)).passwordCredentials.map((p: any) => p.keyId)).not.toContain(old.keyId);
  expect((await api(`/api/tenants/${site.host}`)).body.health).toMatchObject(workingSiteHealth());
}, 180_000);

test("issue 9: a Creatio credential goes only to the sites its creatioSite tag names, at onboarding and at every rotation", async () => {
  const [site, other] = await Promise.all([newCreatio(), newCreatio()]);
  const credential = await storeSiteCredential(app.secrets, site.host);
  await app.secrets.setSecret("creatio-unbound", JSON.stringify({ username: "Supervisor", password: "Supervisor" }));
  const refused = async (creatioUrl: string, name: string) => {
    const r = await api("/api/tenants", { method: "POST", headers: json, body: JSON.stringify({ creatioUrl, creatioCredentialSecretName: name }) });
    expect(r.status).toBe(400);
    expect(r.body.errors).toEqual([{ path: "creatioCredentialSecretName", message: expect.stringMatching(/is not bound to .*its tag creatioSite .*--tags creatioSite=/) }]);
    return r.body.errors[0].message as string;
  };
  expect(await refused(site.url, "creatio-unbound")).toMatch(/is missing/);
  expect(await refused(other.url, credential)).toMatch(new RegExp(`names ${site.host}, not ${other.host}`));
  expect(other.server.requests.filter((q) => q.path.includes("AuthService"))).toEqual([]);

  expect((await onboard({ creatioUrl: site.url, creatioCredentialSecretName: credential })).runtimeStatus).toBe("Completed");
  // The binding is taken away later: rotation stops before sending the credential anywhere.
  const { properties } = await app.secrets.getSecret(credential);
  await app.secrets.updateSecretProperties(credential, properties.version!, { tags: { creatioSite: other.host } });
  const loginsBefore = site.server.requests.filter((q) => q.path.includes("AuthService")).length;
  expect((await api(`/api/tenants/${site.host}/rotate`, { method: "POST", headers: json, body: "{}" })).status).toBe(202);
  const failed = await waitForStatus(app.host.url, `rotate-${site.host}`, ["Completed", "Failed"], 60_000);
  expect(failed.runtimeStatus).toBe("Failed");
  expect(String(failed.output)).toMatch(/Step 1 of 7 \(beginRotation\) failed: Key Vault secret .* is not bound to/);
  expect(site.server.requests.filter((q) => q.path.includes("AuthService")).length).toBe(loginsBefore);
  // Nothing was issued, and the failure shows in the site's status until a rotation succeeds.
  expect((await appFor(site.host)).passwordCredentials).toHaveLength(1);
  expect((await api(`/api/tenants/${site.host}`)).body.rotation).toMatchObject({ lastOutcome: "failed", lastFailedStep: "beginRotation" });
}, 120_000);

test("9 and 10. hostile or malformed requests through the host: 400 or 413 naming the field, never a 500, nothing created, no stack trace; failures logged as errors", async () => {
  const answers: { status: number; text: string }[] = [];
  const send = async (method: string, path: string, body?: string, contentType = "application/json") => {
    const r = await fetch(`${app.host.url}${path}`, { method, headers: body === undefined ? {} : { "Content-Type": contentType }, body });
    const text = await r.text();
    answers.push({ status: r.status, text });
    return { status: r.status, body: text ? JSON.parse(text) : undefined };
  };
  const site = await newCreatio();
  const credential = await storeSiteCredential(app.secrets, site.host);
  const good = { creatioUrl: site.url, creatioCredentialSecretName: credential };

  // JSON nested 4,000 levels deep (was a 500 with an empty body).
  const deep = await send("POST", "/api/tenants", `${"[".repeat(4000)}${"]".repeat(4000)}`);
  expect(deep.status).toBe(400);
  expect(deep.body.error).toMatch(/nested too deeply/);
  // Cloud metadata, link-local and unspecified addresses are refused before anything starts.
  for (const url of ["https://169.254.169.254", "https://[fe80::1]", "https://2852039166", "https://0.0.0.0"]) {
    const r = await send("POST", "/api/tenants", JSON.stringify({ ...good, creatioUrl: url }));
    expect({ url, status: r.status, paths: r.body.errors.map((e: any) => e.path) }).toEqual({ url, status: 400, paths: ["creatioUrl"] });
  }
  // Control and invisible characters: in a body string, and in the {host} of GET and rotate.
  const nul = await send("POST", "/api/tenants", JSON.stringify({ ...good, displayName: "Creatio\u0000" }));
  expect(nul.status).toBe(400);
  expect(nul.body.errors.map((e: any) => e.path)).toEqual(["displayName"]);
  for (const ch of ["\ufeff", "\u00a0", "\u3000", "\u2028", "\u000b"]) {
    const hostPath = encodeURIComponent(`${site.host}${ch}`);
    expect((await send("GET", `/api/tenants/${hostPath}`)).status).toBe(400);
    expect((await send("POST", `/api/tenants/${hostPath}/rotate`, "{}")).status).toBe(400);
  }
  // One canonical key: a second port is no host, and an IDN host is the same punycode key on every route.
  expect((await send("GET", `/api/tenants/${site.host}:443`)).status).toBe(400);
  const idn = await send("GET", `/api/tenants/${encodeURIComponent("bücher.example")}`);
  expect(idn).toEqual({ status: 404, body: { error: expect.stringMatching(/^No Creatio site xn--bcher-kva\.example is managed here\. GET \/api\/tenants lists the managed sites/) } });
  // A body above 64 KiB is refused with 413, not read into a 500.
  const big = await send("POST", "/api/tenants", JSON.stringify({ ...good, displayName: "x".repeat(8 * 1024 * 1024) }));
  expect(big.status).toBe(413);

  // None of it created anything, and no answer carries a stack frame or a file path.
  expect(graphWritesFor("169.254.169.254")).toBe(0);
  expect(answers.every((a) => a.status === 400 || a.status === 413 || a.status === 404)).toBe(true);
  for (const a of answers) expect(a.text).not.toMatch(/\n\s+at |\/work\/|node_modules|\.js:\d+/);

  // A failed onboarding is logged at error level (the host prints the level), not as information.
  const from = app.hostLines.length;
  const failed = await onboard({ creatioUrl: "https://creatio-typo-2.invalid" });
  expect(failed.runtimeStatus).toBe("Failed");
  const finished = app.hostLines.slice(from).filter((l) => l.includes('"event":"onboarding.finished"'));
  expect(finished.length).toBeGreaterThan(0);
  expect(finished.every((l) => /\[Error\]/.test(l))).toBe(true);
}, 120_000);

/**
 * The command line's argument handling and its use of the HTTP API (cli/main.ts), against a fake
 * fetch: which request each command sends, how it follows a run, what it prints and which exit
 * code it returns, including answers a sandbox does not easily give (401, 409, an older server's
 * 404, a status of 400 for a failed run). The real binary against a real stack is test/e2e/cli.test.ts.
 */
import { main, type Io } from "../../cli/main";
import type { CredentialStore } from "../../cli/credential";

interface Call {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: any;
}
type Route = (call: Call) => { status: number; body?: unknown } | undefined;

function harness(route: Route, options: { env?: Record<string, string>; stdin?: string; tty?: boolean; prompt?: string; store?: CredentialStore } = {}) {
  const calls: Call[] = [];
  const stdout: string[] = [];
  const stderr: string[] = [];
  const fakeFetch = async (input: any, init: any = {}) => {
    const call: Call = { method: init.method ?? "GET", url: String(input), headers: init.headers ?? {}, body: init.body === undefined ? undefined : JSON.parse(init.body) };
    calls.push(call);
    const answer = route(call);
    if (!answer) throw Object.assign(new TypeError("fetch failed"), { cause: { code: "ECONNREFUSED" } });
    return new Response(answer.body === undefined ? null : JSON.stringify(answer.body), { status: answer.status });
  };
  const stdin = Object.assign((async function* () {
    if (options.stdin !== undefined) yield Buffer.from(options.stdin);
  })(), { isTTY: options.tty ?? false }) as unknown as Io["stdin"];
  const io: Io = {
    stdout: { write: (s: string) => stdout.push(s), isTTY: false },
    stderr: { write: (s: string) => stderr.push(s), isTTY: false },
    stdin,
    env: { ...(options.env ?? {}) },
    fetch: fakeFetch as typeof fetch,
    sleep: async () => undefined,
    prompt: options.prompt === undefined ? undefined : async () => options.prompt!,
    credentialStore: options.store ? () => options.store! : undefined,
  };
  const run = (...args: string[]) => main(["node", "creatio-o365", ...args], io);
  return { calls, run, out: () => stdout.join(""), err: () => stderr.join("") };
}

const STATUS_URI = "http://localhost:7071/runtime/webhooks/durabletask/instances/onboard-acme.example";
const started = (id: string) => ({ status: 202, body: { id, statusQueryGetUri: STATUS_URI, sendEventPostUri: "x", terminatePostUri: "x", purgeHistoryDeleteUri: "x" } });

/** A run that goes through the given custom statuses, one per poll, and ends with `final`. */
function runThrough(statuses: object[], final: object): () => object {
  let i = 0;
  return () => (i < statuses.length ? { runtimeStatus: "Running", customStatus: statuses[i++] } : final);
}

describe("onboard", () => {
  it("sends the options as the POST /api/tenants fields, the key as x-functions-key, follows the run with step k of n and retries, and ends with a summary", async () => {
    const poll = runThrough(
      [
        { step: "checkCreatioSite", stepNumber: 1, totalSteps: 8, attempt: 1 },
        { step: "ensureApplication", stepNumber: 2, totalSteps: 8, attempt: 1 },
        { step: "ensureApplication", stepNumber: 2, totalSteps: 8, attempt: 1, retryAt: "2026-12-02T10:00:02Z", lastError: "Graph 429" },
        { step: "ensureApplication", stepNumber: 2, totalSteps: 8, attempt: 2 },
      ],
      { runtimeStatus: "Completed", customStatus: { step: "done", stepNumber: 8, totalSteps: 8 }, output: { host: "acme.example", appId: "app-1", secret: { name: "s", expiresOn: "2028-12-01T00:00:00Z" }, mail: { ews: "allowed", reason: null } } },
    );
    const h = harness((call) => {
      if (call.method === "POST" && call.url === "http://localhost:7071/api/tenants") return started("onboard-acme.example");
      if (call.url === STATUS_URI) return { status: 200, body: poll() };
      if (call.url === "http://localhost:7071/api/tenants/acme.example") return { status: 200, body: { host: "acme.example", health: { state: "healthy", problems: [] }, mail: { ews: "allowed" } } };
      return undefined;
    }, { env: { CREATIO_O365_KEY: "the-key" } });

    const code = await h.run("onboard", "https://acme.example", "--credential", "cred-1", "--lifetime-days", "90", "--tenant", "t-1", "--take-over", "--allow-user-consent", "--permission-profile", "creatio-graph");
    expect(h.err()).toBe("");
    expect(code).toBe(0);
    expect(h.calls[0]!.body).toEqual({
      creatioUrl: "https://acme.example",
      creatioCredentialSecretName: "cred-1",
      secretLifetimeDays: 90,
      entraTenantId: "t-1",
      takeOver: true,
      allowUserConsent: true,
      permissionProfile: "creatio-graph",
    });
    expect(h.calls.every((c) => c.headers["x-functions-key"] === "the-key")).toBe(true);
    expect(h.out().split("\n")).toEqual([
      "onboarding of acme.example started (onboard-acme.example)",
      "step 1 of 8: checkCreatioSite",
      "step 2 of 8: ensureApplication",
      "  attempt 1 of ensureApplication failed: Graph 429; retrying at 2026-12-02T10:00:02Z",
      "step 2 of 8: ensureApplication (attempt 2)",
      "onboarded acme.example",
      "  app id          app-1",
      "  secret expires  2028-12-01T00:00:00Z  (Key Vault s; the value is never shown)",
      "  mail readiness  allowed",
      "  health          healthy",
      "",
    ]);
  });

  it("sends only the fields given (no entraTenantId without --tenant, no key header without CREATIO_O365_KEY)", async () => {
    const h = harness((call) => (call.method === "POST" ? { status: 400, body: { error: "Invalid request", errors: [{ path: "creatioUrl", message: "creatioUrl must be https" }] } } : undefined));
    const code = await h.run("onboard", "http://acme.example", "--credential", "c");
    expect(code).toBe(1);
    expect(h.calls[0]!.body).toEqual({ creatioUrl: "http://acme.example", creatioCredentialSecretName: "c" });
    expect(h.calls[0]!.headers["x-functions-key"]).toBeUndefined();
    expect(h.err()).toBe("creatio-o365: onboarding failed (400): Invalid request (creatioUrl must be https)\n");
  });

  it("a server that does not know entraTenantId answers 400: the CLI shows its error", async () => {
    const h = harness(() => ({ status: 400, body: { error: "Invalid request body", errors: [{ path: "entraTenantId", message: "unknown field entraTenantId" }] } }));
    expect(await h.run("onboard", "https://acme.example", "--credential", "c", "--tenant", "t")).toBe(1);
    expect(h.err()).toContain("unknown field entraTenantId");
  });

  it("a failed run exits 1 naming the step and the cause; --output json prints the final status", async () => {
    const failed = { runtimeStatus: "Failed", customStatus: { step: "configureCreatio", stepNumber: 7, totalSteps: 8, error: "Step 7 of 8 (configureCreatio) failed after 3 attempts: Creatio 503. Fix it, then onboard again." }, output: "x" };
    const h = harness((call) => (call.method === "POST" ? started("onboard-acme.example") : { status: 200, body: failed }));
    expect(await h.run("onboard", "https://acme.example", "--credential", "c", "--output", "json")).toBe(1);
    expect(JSON.parse(h.out())).toEqual(failed);
    expect(h.err()).toBe("creatio-o365: onboarding failed: Step 7 of 8 (configureCreatio) failed after 3 attempts: Creatio 503. Fix it, then onboard again.\n");
  });

  it("a failed run answered 400 (as Azure's Durable status API may) is still read as the run's end", async () => {
    const failed = { runtimeStatus: "Failed", customStatus: { step: "checkCreatioSite", stepNumber: 1, totalSteps: 8, error: "Step 1 of 8 (checkCreatioSite) failed: Creatio refused the login." }, output: "x" };
    const h = harness((call) => (call.method === "POST" ? started("onboard-acme.example") : { status: 400, body: failed }));
    expect(await h.run("onboard", "https://acme.example", "--credential", "c")).toBe(1);
    expect(h.err()).toBe("creatio-o365: onboarding failed: Step 1 of 8 (checkCreatioSite) failed: Creatio refused the login.\n");
  });

  it("409: says which run is active and how to follow it", async () => {
    const h = harness(() => ({ status: 409, body: { error: "An onboarding of acme.example is running", instanceId: "onboard-acme.example" } }));
    expect(await h.run("onboard", "https://acme.example", "--credential", "c")).toBe(1);
    expect(h.err()).toMatch(/An onboarding of acme\.example is running\. Active run: onboard-acme\.example\. Follow it with `creatio-o365 site acme\.example`/);
  });

  it("refuses a lifetime that is not 1-730 before calling anything (exit 2)", async () => {
    const h = harness(() => undefined);
    expect(await h.run("onboard", "https://acme.example", "--credential", "c", "--lifetime-days", "800")).toBe(2);
    expect(await h.run("onboard", "https://acme.example", "--credential", "c", "--lifetime-days", "ten")).toBe(2);
    expect(await h.run("onboard", "https://acme.example")).toBe(2);
    expect(h.calls).toEqual([]);
    expect(h.err()).toMatch(/--lifetime-days must be 1-730/);
    expect(h.err()).toMatch(/required option '--credential <name>'/);
  });
});

describe("errors", () => {
  it("unreachable app: what to do, exit 3", async () => {
    const h = harness(() => undefined);
    expect(await h.run("sites", "--url", "http://localhost:1")).toBe(3);
    expect(h.err()).toBe("creatio-o365: cannot reach http://localhost:1 (ECONNREFUSED): is `npm start` running? set --url or CREATIO_O365_URL\n");
  });

  it("401: set CREATIO_O365_KEY, exit 3; --output json also prints the error as JSON", async () => {
    const h = harness(() => ({ status: 401 }));
    expect(await h.run("sites", "-o", "json")).toBe(3);
    expect(h.err()).toMatch(/\(401\): set CREATIO_O365_KEY to the app's function key/);
    expect(JSON.parse(h.out()).error).toMatch(/CREATIO_O365_KEY/);
  });

  it("uses CREATIO_O365_URL, and --url over it", async () => {
    const h = harness((call) => ({ status: 200, body: [] }), { env: { CREATIO_O365_URL: "http://env.example:7071/" } });
    await h.run("sites");
    await h.run("sites", "--url", "http://flag.example");
    expect(h.calls.map((c) => c.url)).toEqual(["http://env.example:7071/api/tenants", "http://flag.example/api/tenants"]);
  });
});

describe("sites and site", () => {
  it("--include-offboarded asks for ?include=offboarded; --output json prints the API's answer", async () => {
    const list = [{ host: "a.example", health: { state: "healthy", problems: [] }, mail: { ews: "allowed" }, rotation: { daysLeft: 100, nextRotationDueAt: null } }];
    const h = harness(() => ({ status: 200, body: list }));
    expect(await h.run("sites", "--include-offboarded", "--output", "json")).toBe(0);
    expect(h.calls[0]!.url).toBe("http://localhost:7071/api/tenants?include=offboarded");
    expect(JSON.parse(h.out())).toEqual(list);
  });

  it("site: a URL names its host; 404 says how to list the sites", async () => {
    const h = harness(() => ({ status: 404, body: { error: "No managed site localhost:7103" } }));
    expect(await h.run("site", "https://LOCALHOST:7103")).toBe(1);
    expect(h.calls[0]!.url).toBe("http://localhost:7071/api/tenants/localhost%3A7103");
    expect(h.err()).toBe("creatio-o365: No managed site localhost:7103: `creatio-o365 sites` lists the managed sites (localhost:7103 is not one of them)\n");
  });
});

describe("rotate", () => {
  it("--grace-hours 0 is sent as gracePeriodHours; without it the body is empty", async () => {
    const done = { runtimeStatus: "Completed", customStatus: { step: "done" }, output: { host: "a.example", keyId: "k2", expiresOn: "2028-01-01", previousKeyId: "k1", graceEndedAt: "2026-12-02" } };
    const h = harness((call) => (call.method === "POST" ? started("rotate-a.example") : call.url === STATUS_URI ? { status: 200, body: done } : { status: 200, body: { health: { state: "healthy", problems: [] } } }));
    expect(await h.run("rotate", "a.example", "--grace-hours", "0")).toBe(0);
    expect(await h.run("rotate", "a.example")).toBe(0);
    const posts = h.calls.filter((c) => c.method === "POST");
    expect(posts.map((p) => [p.url, p.body])).toEqual([
      ["http://localhost:7071/api/tenants/a.example/rotate", { gracePeriodHours: 0 }],
      ["http://localhost:7071/api/tenants/a.example/rotate", {}],
    ]);
    expect(h.out()).toContain("rotated a.example\n  new keyId        k2\n");
    expect(await h.run("rotate", "a.example", "--grace-hours", "-1")).toBe(2);
  });
});

describe("offboard (DELETE /api/tenants/{host} contract)", () => {
  it("off a terminal it needs --yes, and calls nothing without it", async () => {
    const h = harness(() => undefined);
    expect(await h.run("offboard", "a.example")).toBe(2);
    expect(h.calls).toEqual([]);
    expect(h.err()).toMatch(/add --yes: creatio-o365 offboard a\.example --yes/);
  });

  it("on a terminal it asks for the host again: a mismatch changes nothing", async () => {
    const h = harness(() => undefined, { tty: true, prompt: "b.example" });
    expect(await h.run("offboard", "a.example")).toBe(2);
    expect(h.calls).toEqual([]);
    expect(h.err()).toMatch(/"b\.example" is not a\.example: nothing was changed/);
  });

  it("the host typed again: DELETE with {confirm}, then follows the run to its summary", async () => {
    const poll = runThrough([{ step: "unlinkCreatio", stepNumber: 1, totalSteps: 4 }], { runtimeStatus: "Completed", customStatus: { step: "done" }, output: { host: "a.example", entraApp: "deleted (restorable for 30 days)" } });
    const h = harness((call) => (call.method === "DELETE" ? started("offboard-a.example") : { status: 200, body: poll() }), { tty: true, prompt: "a.example" });
    expect(await h.run("offboard", "a.example")).toBe(0);
    expect(h.calls[0]).toMatchObject({ method: "DELETE", url: "http://localhost:7071/api/tenants/a.example", body: { confirm: "a.example" } });
    expect(h.out()).toContain("step 1 of 4: unlinkCreatio\n");
    expect(h.out()).toContain("offboarded a.example\n  entraApp: deleted (restorable for 30 days)\n");
  });

  it("200 already offboarded: prints the message as a no-op; --output json prints the body", async () => {
    const body = { host: "a.example", offboarded: true, offboardedAt: "2026-12-01T00:00:00Z", message: "a.example was offboarded already; nothing was changed." };
    const h = harness(() => ({ status: 200, body }));
    expect(await h.run("offboard", "a.example", "--yes")).toBe(0);
    expect(h.out()).toBe("a.example was offboarded already; nothing was changed.\n");
    // Without the app's message it still says it did nothing, and since when.
    const bare = harness(() => ({ status: 200, body: { ...body, message: undefined } }));
    expect(await bare.run("offboard", "a.example", "--yes")).toBe(0);
    expect(bare.out()).toBe("a.example: nothing to do, already offboarded at 2026-12-01T00:00:00Z.\n");
    const j = harness(() => ({ status: 200, body }));
    expect(await j.run("offboard", "a.example", "--yes", "--output", "json")).toBe(0);
    expect(JSON.parse(j.out())).toEqual(body);
  });

  it("an older server (404 without a body) is named as such; 404 with a body is an unknown site; 409 names the run", async () => {
    const old = harness(() => ({ status: 404 }));
    expect(await old.run("offboard", "a.example", "--yes")).toBe(1);
    expect(old.err()).toMatch(/cannot offboard .*older than this command line/);
    const unknown = harness(() => ({ status: 404, body: { error: "No managed site a.example" } }));
    expect(await unknown.run("offboard", "a.example", "--yes")).toBe(1);
    expect(unknown.err()).toMatch(/No managed site a\.example: `creatio-o365 sites` lists/);
    const busy = harness(() => ({ status: 409, body: { error: "A rotation of a.example is running.", instanceId: "rotate-a.example" } }));
    expect(await busy.run("offboard", "a.example", "--yes")).toBe(1);
    expect(busy.err()).toMatch(/Active run: rotate-a\.example/);
  });
});

describe("plan (GET /api/rotation-plan contract)", () => {
  it("prints the table and the last sweep; --output json the API's answer", async () => {
    const plan = { generatedAt: "2026-12-02T10:00:00Z", rotateDaysBeforeExpiry: 30, sites: [{ host: "a.example", due: true, reason: "expiresSoon", creatioSecretExpiresOn: "2026-12-20T00:00:00Z", dueOn: "2026-11-20T00:00:00Z", daysLeft: 18 }], lastSweep: null };
    const h = harness(() => ({ status: 200, body: plan }));
    expect(await h.run("plan")).toBe(0);
    expect(h.calls[0]!.url).toBe("http://localhost:7071/api/rotation-plan");
    expect(h.out()).toMatch(/a\.example\s+│ yes\s+│ expiresSoon/);
    expect(h.out()).toContain("Last sweep: none recorded yet.\n");
    const j = harness(() => ({ status: 200, body: plan }));
    expect(await j.run("plan", "--output", "json")).toBe(0);
    expect(JSON.parse(j.out())).toEqual(plan);
  });

  it("an older server answers 404: says so", async () => {
    const h = harness(() => ({ status: 404 }));
    expect(await h.run("plan")).toBe(1);
    expect(h.err()).toBe("creatio-o365: http://localhost:7071 has no GET /api/rotation-plan (404): the app is older than this command line; update it\n");
  });
});

describe("credential set", () => {
  const PASSWORD = "pa55-word-never-shown";
  const store = () => {
    const saved: { name: string; value: string; tags: Record<string, string> }[] = [];
    const s: CredentialStore = { set: async (name, value, tags) => (saved.push({ name, value, tags }), { version: "v1" }) };
    return { s, saved };
  };

  it("stores the JSON from standard input with the creatioSite tag of the site (a URL's host), never printing the value", async () => {
    const { s, saved } = store();
    const h = harness(() => undefined, { stdin: JSON.stringify({ username: "Supervisor", password: PASSWORD }), store: s, env: { KEY_VAULT_URL: "https://vault.example/" } });
    expect(await h.run("credential", "set", "creatio-api-acme", "--site", "https://Acme.Example:443")).toBe(0);
    expect(saved).toEqual([{ name: "creatio-api-acme", value: JSON.stringify({ username: "Supervisor", password: PASSWORD }), tags: { creatioSite: "acme.example" } }]);
    expect(h.out()).toBe("stored creatio-api-acme (version v1) in https://vault.example, bound to acme.example (tag creatioSite)\nnext: creatio-o365 onboard https://acme.example --credential creatio-api-acme\n");
    expect(h.out() + h.err()).not.toContain(PASSWORD);
  });

  it("refuses what is not the app's credential shape, naming the shape and not the value (exit 2, nothing stored)", async () => {
    for (const input of [`{"user":"x","pass":"${PASSWORD}"`, JSON.stringify({ user: "x", secret: PASSWORD }), ""]) {
      const { s, saved } = store();
      const h = harness(() => undefined, { stdin: input, store: s, env: { KEY_VAULT_URL: "https://vault.example" } });
      expect(await h.run("credential", "set", "c", "--site", "acme.example")).toBe(2);
      expect(saved).toEqual([]);
      expect(h.err()).toMatch(/\{"username","password"\}/);
      expect(h.out() + h.err()).not.toContain(PASSWORD);
    }
  });

  it("needs a vault URL and a valid secret name", async () => {
    const { s, saved } = store();
    const noVault = harness(() => undefined, { stdin: JSON.stringify({ username: "u", password: "p" }), store: s });
    expect(await noVault.run("credential", "set", "c", "--site", "acme.example")).toBe(2);
    expect(noVault.err()).toMatch(/set --vault-url or KEY_VAULT_URL/);
    const badName = harness(() => undefined, { stdin: JSON.stringify({ username: "u", password: "p" }), store: s, env: { KEY_VAULT_URL: "https://v.example" } });
    expect(await badName.run("credential", "set", "bad_name", "--site", "acme.example")).toBe(2);
    expect(saved).toEqual([]);
  });
});

describe("help", () => {
  it("every command has --help with examples", async () => {
    for (const cmd of [[], ["sites"], ["site"], ["onboard"], ["rotate"], ["offboard"], ["plan"], ["credential", "set"]]) {
      const h = harness(() => undefined);
      expect(await h.run(...cmd, "--help")).toBe(0);
      expect(h.out()).toMatch(/Usage: creatio-o365/);
      expect(h.out()).toMatch(/Examples:\n\s+\$ creatio-o365/);
    }
  });
});

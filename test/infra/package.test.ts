/**
 * The deployable package (scripts/package.ts, what azd deploys): the compiled app bundled with its
 * production dependencies into index.js (what the app needs to start) and sdk.js (the SDKs it
 * loads on first use), host.json and a package.json naming index.js; nothing from tests,
 * emulators, the local host, dev tooling or infra. It starts in the local host on its own (in a
 * temporary folder, so no module can be resolved from the repository's node_modules by accident),
 * serves the API and onboards a site against the emulators, which runs every deferred module.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { BUNDLE, buildPackage, EXTERNAL, productionDependencyDirs, SDK_BUNDLE, SDK_ENTRY, type BuiltPackage } from "../../scripts/package";
import { coldLoad } from "../../dev/coldLoad";
import { spawnHost, type SpawnedHost } from "../../dev/host/spawn";
import { startEmulators, SANDBOX_CREATIO_CREDENTIAL_SECRET, type EmulatorStack } from "../../dev/emulators";
import { SANDBOX_DIR } from "../../dev/sandbox";
import { buildOpenApiDocument } from "../../src/api/openapi";
import { startTestAzurite, waitFor, type TestStorage } from "../host/helpers";
import { REPO_ROOT } from "./support/bicep";
import { appRegistrations } from "./support/registrations";

const MiB = 1024 * 1024;
const work = mkdtempSync(path.join(os.tmpdir(), "package-test-"));
const outDir = path.join(work, "app");
let pkg: BuiltPackage;

// npm test builds first; the package is made from that dist/.
beforeAll(async () => {
  pkg = await buildPackage({ outDir, build: false });
}, 60_000);

afterAll(() => rmSync(work, { recursive: true, force: true }));

test("holds the two bundles, host.json and a package.json whose main is the bundle, and nothing else", () => {
  expect(pkg.files).toEqual([BUNDLE, "host.json", "package.json", SDK_BUNDLE].sort());
  const deployed = JSON.parse(readFileSync(path.join(outDir, "package.json"), "utf8")) as Record<string, unknown>;
  expect(deployed.main).toBe(BUNDLE);
  // Nothing to install in Azure: the bundles hold the dependencies.
  expect(Object.keys(deployed).filter((k) => /dependencies|scripts/i.test(k))).toEqual([]);
  expect(readFileSync(path.join(outDir, "host.json"), "utf8")).toBe(readFileSync(path.join(REPO_ROOT, "host.json"), "utf8"));
});

test("the creatio-o365 command line (cli/) and its libraries stay out: development dependencies, which neither the bundle nor `func publish` (.funcignore) carries", () => {
  const production = productionDependencyDirs(REPO_ROOT);
  expect(production.filter((dir) => /^node_modules\/(commander|cli-table3|ora|tsx)$/.test(dir))).toEqual([]);
  expect(readFileSync(path.join(REPO_ROOT, ".funcignore"), "utf8").split("\n")).toContain("/cli/");
});

test("is at most 5 MiB", () => {
  expect(pkg.bytes).toBeLessThanOrEqual(5 * MiB);
});

test("bundles only the compiled app and production dependencies: no test, emulator, host, dev or infra code", () => {
  const production = productionDependencyDirs(REPO_ROOT);
  // Plugin modules are "namespace:path"; sdk.js's entry is generated.
  const inputs = pkg.metafiles.flatMap((m) => Object.keys(m.inputs)).filter((f) => !f.includes(":") && f !== SDK_ENTRY);
  const foreign = inputs.filter((f) => !f.startsWith("dist/src/") && !production.some((dir) => f.startsWith(`${dir}/`)));
  expect(foreign).toEqual([]);
  expect(inputs.filter((f) => /^(dist\/)?(test|dev|infra|cli)\//.test(f) || /node_modules\/(jest|typescript|azurite|tsx|esbuild|commander|cli-table3|ora)\//.test(f))).toEqual([]);
  expect(inputs).toEqual(expect.arrayContaining(["dist/src/index.js"]));
});

test("leaves out only what scripts/package.ts lists (EXTERNAL) and sdk.js, which index.js loads on first use", () => {
  const externals = new Set(
    pkg.metafiles.flatMap((m) => Object.values(m.outputs).flatMap((o) => o.imports.filter((i) => i.external).map((i) => i.path))),
  );
  // Node's built-in modules stay external too.
  const notBuiltin = [...externals].filter((p) => !p.startsWith("node:") && !require("node:module").builtinModules.includes(p));
  expect(notBuiltin.sort()).toEqual([...EXTERNAL, `./${SDK_BUNDLE}`].sort());
});

test("durable-functions uses moment only as the shim in index.js offers it: moment(date) and moment.duration(...)", () => {
  const lib = path.join(REPO_ROOT, "node_modules", "durable-functions", "lib");
  const uses = new Set<string>();
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const file = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(file);
      else if (entry.name.endsWith(".js")) for (const m of readFileSync(file, "utf8").matchAll(/\bmoment\b(\s*\(|\.\w+)?/g)) uses.add(m[1]?.replace(/\s/g, "") ?? "moment");
    }
  };
  walk(lib);
  // "moment" alone: the require and the variable it is assigned to.
  expect([...uses].sort()).toEqual(["(", ".duration", "moment"]);
});

test("registers the same functions from the package as from the repository", () => {
  const names = (dir?: string) => appRegistrations(dir).map((r) => `${r.name}:${r.triggerType}`).sort();
  expect(names(outDir)).toEqual(names());
});

test("loading the app loads none of the Azure SDKs: the packaged app reads index.js only, the unbundled one no identity, Key Vault or Graph module", () => {
  const packaged = coldLoad(path.join(outDir, BUNDLE));
  expect(packaged.modules).toEqual([path.join(outDir, BUNDLE)]);
  const unbundled = coldLoad(path.join(REPO_ROOT, "dist", "src", "index.js"));
  expect(unbundled.functions).toBe(packaged.functions);
  expect(unbundled.modules.filter((m) => /node_modules[\\/](@azure[\\/](identity|keyvault-secrets|msal-node)|@microsoft[\\/]microsoft-graph-client)[\\/]/.test(m))).toEqual([]);
});

describe("the package in the local host", () => {
  let stack: EmulatorStack;
  let storage: TestStorage;
  let host: SpawnedHost;

  beforeAll(async () => {
    stack = await startEmulators({ sandboxDir: SANDBOX_DIR, graphPort: 0, keyVaultPort: 0, creatioPort: 0 });
    storage = await startTestAzurite();
    host = await spawnHost({
      appDir: outDir,
      runTimers: false,
      env: {
        ...stack.appSettings(),
        AzureWebJobsStorage: storage.azurite.connectionString,
        // The timer's schedule is the binding expression %ROTATION_SCHEDULE%, resolved by the host.
        ROTATION_SCHEDULE: "0 0 3 * * *",
      },
    });
  }, 90_000);

  afterAll(async () => {
    await host?.stop();
    await storage?.stop();
    await stack?.close();
  });

  test("serves GET /api/openapi.json, the same document as the source", async () => {
    const res = await fetch(`${host.url}/api/openapi.json`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual(buildOpenApiDocument());
  });

  test("answers an invalid POST /api/tenants 400 with zod's English messages", async () => {
    const res = await fetch(`${host.url}/api/tenants`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ creatioUrl: 42 }) });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: string; errors: { path: string; message: string }[] };
    expect(body.error).toBe("Invalid request");
    expect(body.errors.map((e) => e.path)).toEqual(expect.arrayContaining(["creatioUrl", "creatioCredentialSecretName"]));
    expect(body.errors.find((e) => e.path === "creatioUrl")!.message).toMatch(/expected string, received number/i);
  });

  test("onboards a site (durable client, Key Vault, identity, Graph and Creatio calls from sdk.js) and shows its status", async () => {
    const started = await fetch(`${host.url}/api/tenants`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ creatioUrl: stack.creatioUrl, creatioCredentialSecretName: SANDBOX_CREATIO_CREDENTIAL_SECRET }),
    });
    expect(started.status).toBe(202);
    const { statusQueryGetUri } = (await started.json()) as { statusQueryGetUri: string };
    const status = await waitFor(
      "the onboarding to finish",
      async () => {
        const s = (await (await fetch(statusQueryGetUri)).json()) as { runtimeStatus: string; output: unknown };
        return ["Completed", "Failed", "Terminated"].includes(s.runtimeStatus) ? s : undefined;
      },
      90_000,
      250,
    );
    expect(status).toMatchObject({ runtimeStatus: "Completed" });
    const site = new URL(stack.creatioUrl).host;
    const res = await fetch(`${host.url}/api/tenants/${encodeURIComponent(site)}`);
    expect(res.status).toBe(200);
    const tenant = (await res.json()) as { secret?: { keyId?: string } };
    const graph = (await (await fetch(`${stack.graphUrl}/_emulator/state`)).json()) as { applications: { uniqueName?: string; passwordCredentials: { keyId: string }[] }[] };
    const app = graph.applications.find((a) => (a.uniqueName ?? "").startsWith("creatio-o365-"))!;
    expect(app.passwordCredentials).toHaveLength(1);
    expect(JSON.stringify(tenant)).toContain(app.passwordCredentials[0]!.keyId);
  }, 120_000);
});

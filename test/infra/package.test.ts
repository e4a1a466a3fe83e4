/**
 * The deployable package (dev/package.ts, what azd deploys): it holds the compiled app and its
 * production dependencies and nothing from tests, emulators, the local host, dev tooling or infra,
 * and it starts in the local host on its own (in a temporary folder, so no module can be resolved
 * from the repository's node_modules by accident) and serves the API.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { buildPackage, productionDependencyDirs } from "../../dev/package";
import { spawnHost, type SpawnedHost } from "../../dev/host/spawn";
import { startAzurite, type AzuriteHandle } from "../../dev/azurite";
import { buildOpenApiDocument } from "../../src/api/openapi";
import { getFreePorts } from "../support/ports";
import { REPO_ROOT } from "./support/bicep";
import { appRegistrations } from "./support/registrations";

const work = mkdtempSync(path.join(os.tmpdir(), "package-test-"));
const outDir = path.join(work, "app");
// npm test builds first; the package is made from that dist/.
const pkg = buildPackage({ outDir, build: false });
const files = pkg.files;

afterAll(() => rmSync(work, { recursive: true, force: true }));

test("contains the compiled app, host.json, package.json and the production dependencies", () => {
  expect(files).toEqual(expect.arrayContaining(["dist/src/index.js", "host.json", "package.json"]));
  const manifest = JSON.parse(readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")) as { main: string; dependencies: Record<string, string> };
  expect(files).toContain(manifest.main);
  for (const dep of Object.keys(manifest.dependencies)) {
    expect(`${dep}: ${files.some((f) => f.startsWith(`node_modules/${dep}/`))}`).toBe(`${dep}: true`);
  }
});

test("contains no test, emulator, host, dev, infra or source code, no source maps, no local settings", () => {
  const forbidden = files.filter(
    (f) =>
      /^(src|test|dev|infra|\.sandbox|\.ci|coverage)\//.test(f) ||
      /^dist\/(test|dev)\//.test(f) ||
      /^dist\/deploy\//.test(f) ||
      /\.(ts|map)$/.test(f) ||
      /(^|\/)local\.settings(\.[\w-]+)?\.json$/.test(f) ||
      /^(azure\.yaml|openapi\.json|jest\.config\.js|tsconfig[\w.]*\.json)$/.test(f),
  );
  expect(forbidden).toEqual([]);
  // Only the app's own modules under dist/.
  expect(files.filter((f) => f.startsWith("dist/") && !f.startsWith("dist/src/"))).toEqual([]);
});

test("contains no development-only dependency", () => {
  const manifest = JSON.parse(readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")) as { devDependencies: Record<string, string> };
  const production = new Set(productionDependencyDirs(REPO_ROOT));
  const devOnly = Object.keys(manifest.devDependencies).filter((d) => !production.has(`node_modules/${d}`));
  expect(devOnly).toEqual(expect.arrayContaining(["jest", "typescript", "azurite", "tsx"]));
  expect(devOnly.filter((d) => files.some((f) => f.startsWith(`node_modules/${d}/`)))).toEqual([]);
});

test("registers the same functions from the package as from the repository", () => {
  const names = (dir?: string) => appRegistrations(dir).map((r) => `${r.name}:${r.triggerType}`).sort();
  expect(names(outDir)).toEqual(names());
});

describe("the package in the local host", () => {
  let azurite: AzuriteHandle;
  let host: SpawnedHost;

  beforeAll(async () => {
    const [blobPort, queuePort, tablePort] = await getFreePorts(3);
    azurite = await startAzurite({ location: path.join(work, "azurite"), blobPort, queuePort, tablePort });
    host = await spawnHost({
      appDir: outDir,
      runTimers: false,
      env: {
        AzureWebJobsStorage: azurite.connectionString,
        // Read lazily by the app; only needed for calls that reach Key Vault, which this test makes none of.
        KEY_VAULT_URL: "https://example.vault.azure.net",
        // The timer's schedule is the binding expression %ROTATION_SCHEDULE%, resolved by the host.
        ROTATION_SCHEDULE: "0 0 3 * * *",
      },
    });
  }, 60_000);

  afterAll(async () => {
    await host?.stop();
    await azurite?.stop();
  });

  test("starts and serves GET /api/openapi.json, the same document as the source", async () => {
    const res = await fetch(`${host.url}/api/openapi.json`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual(buildOpenApiDocument());
  });
});

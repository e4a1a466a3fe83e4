// Issue 12: an onboarding makes the documented minimum of upstream calls and no more
// (docs/architecture.md, "Upstream calls per onboarding"), counted by the emulators' request logs:
// the first onboarding on a cold host, the same POST again, and a new site on the warm host.
// Deterministic: counts, never timings (those are `npm run bench`'s).
import { startEmulators, type EmulatorStack } from "../../dev/emulators";
import { spawnHost, type SpawnedHost } from "../../dev/host/spawn";
import { SANDBOX_DIR } from "../../dev/sandbox";
import { countOnboardingCases, diffKeys, MINIMUM_CALLS, ONBOARDING_CASES, sortedKeys } from "../../dev/onboardingCalls";
import { startTestAzurite, type TestStorage } from "../host/helpers";

let stack: EmulatorStack;
let storage: TestStorage;
let host: SpawnedHost;

beforeAll(async () => {
  stack = await startEmulators({ sandboxDir: SANDBOX_DIR });
  storage = await startTestAzurite();
  host = await spawnHost({
    runTimers: false,
    env: { ...stack.appSettings(), AzureWebJobsStorage: storage.azurite.connectionString, ROTATION_SCHEDULE: "0 0 3 * * *" },
  });
}, 120_000);

afterAll(async () => {
  await host?.stop();
  await storage?.stop();
  await stack?.close();
});

test("cold host, re-run and a new site on the warm host each make exactly the documented calls", async () => {
  const cases = await countOnboardingCases(host, stack);
  for (const name of ONBOARDING_CASES) {
    // The difference, call by call, names what was added or lost.
    expect({ case: name, differences: diffKeys(sortedKeys(cases[name]), [...MINIMUM_CALLS[name]].sort()) }).toEqual({ case: name, differences: [] });
    expect(cases[name]).toHaveLength(MINIMUM_CALLS[name].length);
  }
  expect(ONBOARDING_CASES.map((name) => MINIMUM_CALLS[name].length)).toEqual([32, 25, 15]);
}, 240_000);

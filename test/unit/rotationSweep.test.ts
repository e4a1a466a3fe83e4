import { runRotationSweep } from "../../src/functions/rotationSweep";
import { secretNameFor } from "../../src/domain/site";
import { DAY, events, fakeDurableClient, MemoryVault, NOW, recordingContext } from "./rotationFakes";

const inDays = (d: number) => new Date(NOW.getTime() + d * DAY);

function vaultWithSpread() {
  const vault = new MemoryVault();
  // Expiries spread across 90 days, one already expired, one whose last rotation failed.
  const spread: [string, number][] = [
    ["expired.example.com", -2],
    ["d05.example.com", 5],
    ["d29.example.com", 29],
    ["d31.example.com", 31],
    ["d60.example.com", 60],
    ["d89.example.com", 89],
  ];
  for (const [host, days] of spread) vault.site(host, inDays(days));
  vault.site("failed.example.com", inDays(80), { rotationState: "failed", rotationUpdatedAt: NOW.toISOString() });
  // Not ours: other contentType, and ours by contentType but with tags that do not decode.
  vault.seed("db-password", "hunter2", { contentType: "text/plain", expiresOn: inDays(1) });
  vault.seed(secretNameFor("broken.example.com"), "x", { contentType: "text/plain; creatio-o365-oauth", tags: { site: "broken.example.com" } });
  return vault;
}

const deps = (vault: MemoryVault) => ({ secrets: vault, now: () => NOW, rotateDaysBeforeExpiry: 30, gracePeriodHours: 24 });

test("a sweep starts exactly the due sites, an immediate second sweep none", async () => {
  const vault = vaultWithSpread();
  const { client, started } = fakeDurableClient();
  const first = recordingContext("rotationSweep");
  const summary = await runRotationSweep(client, first.context, deps(vault));
  expect(started.map((s) => s.instanceId).sort()).toEqual(
    ["rotate-d05.example.com", "rotate-d29.example.com", "rotate-expired.example.com", "rotate-failed.example.com"].sort(),
  );
  expect(started[0]!.input).toEqual({ host: expect.any(String), gracePeriodHours: 24, trigger: "sweep" });
  expect(summary).toEqual({ managed: 7, due: 4, started: 4, alreadyRunning: 0, expired: 1, unreadable: 1, failedToStart: 0 });

  // One summary line, one secret.expiry line per managed site (what the 7-day alert reads), a loud warning for the expired one.
  expect(events(first.lines, "sweep.finished")).toEqual([expect.objectContaining({ outcome: "succeeded", managed: 7, due: 4, started: 4, expired: 1 })]);
  const expiry = events(first.lines, "secret.expiry");
  expect(expiry.map((e) => e.site)).toEqual([
    "expired.example.com",
    "d05.example.com",
    "d29.example.com",
    "d31.example.com",
    "d60.example.com",
    "failed.example.com",
    "d89.example.com",
  ]);
  expect(expiry[0]).toMatchObject({ outcome: "rotationStarted", expired: true, daysLeft: -2, expiresOn: inDays(-2).toISOString() });
  expect(expiry[3]).toMatchObject({ outcome: "ok", daysLeft: 31 });
  expect(first.lines.some((l) => /^warning: EXPIRED: the client secret Creatio holds for expired\.example\.com/.test(l))).toBe(true);
  expect(first.lines.join("\n")).not.toMatch(/hunter2|secret-of-/);

  const second = recordingContext("rotationSweep");
  const again = await runRotationSweep(client, second.context, deps(vault));
  expect(again).toMatchObject({ due: 4, started: 0, alreadyRunning: 4 });
  expect(started).toHaveLength(4);
});

test("a site whose start fails does not stop the sweep, and is reported", async () => {
  const vault = vaultWithSpread();
  const { client, started } = fakeDurableClient();
  const startNew = client.startNew.bind(client);
  (client as unknown as { startNew: typeof startNew }).startNew = async (name, options) => {
    if (options?.instanceId === "rotate-d05.example.com") throw new Error("The operation failed with an unexpected status code: 500.");
    return startNew(name, options);
  };
  const { context, lines } = recordingContext("rotationSweep");
  const summary = await runRotationSweep(client, context, deps(vault));
  expect(summary).toMatchObject({ due: 4, started: 3, failedToStart: 1 });
  expect(started).toHaveLength(3);
  expect(events(lines, "secret.expiry").find((e) => e.site === "d05.example.com")).toMatchObject({ outcome: "rotationStartFailed" });
});

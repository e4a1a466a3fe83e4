// Issue 14: failures are logged at error level, warnings at warning level, in the one-JSON-line
// format infra/app/alerts.bicep parses from Message.
import { InvocationContext } from "@azure/functions";
import { EVENTS, eventLevel, formatEvent, logEvent } from "../../src/observability";

function recording() {
  const lines: { level: string; text: string }[] = [];
  const context = new InvocationContext({ functionName: "test", logHandler: (level, ...args) => lines.push({ level, text: args.map(String).join(" ") }) });
  return { context, lines };
}

describe("logEvent levels", () => {
  it("writes failures at error level and skipped or expired at warning level, the line unchanged", () => {
    const { context, lines } = recording();
    logEvent(context, EVENTS.rotationFinished, { site: "acme.creatio.com", outcome: "failed", error: "boom" });
    logEvent(context, EVENTS.rotationStep, { site: "acme.creatio.com", outcome: "skipped" });
    logEvent(context, EVENTS.secretExpiry, { site: "acme.creatio.com", outcome: "rotationStarted", expired: true });
    logEvent(context, EVENTS.secretExpiry, { site: "acme.creatio.com", outcome: "rotationStartFailed" });
    logEvent(context, EVENTS.sweepFinished, { outcome: "succeeded" });
    logEvent(context, EVENTS.keyVaultEvent, { outcome: "ignored", level: "warn" });
    expect(lines.map((l) => l.level)).toEqual(["error", "warning", "warning", "error", "information", "warning"]);
    // The alert rules parse Message: one JSON object with event and outcome, the level field not in it.
    const parsed = lines.map((l) => JSON.parse(l.text) as Record<string, unknown>);
    expect(parsed[0]).toMatchObject({ event: "rotation.finished", site: "acme.creatio.com", outcome: "failed", error: "boom" });
    expect(parsed[5]).not.toHaveProperty("level");
  });

  it("falls back to log for a context without warn/error, and skips replays", () => {
    const lines: string[] = [];
    logEvent({ log: (line: unknown) => lines.push(String(line)) }, EVENTS.onboardingFinished, { outcome: "failed" });
    logEvent({ log: (line: unknown) => lines.push(String(line)), df: { isReplaying: true } }, EVENTS.onboardingFinished, { outcome: "failed" });
    expect(lines).toHaveLength(1);
    expect(eventLevel({ outcome: "expired" })).toBe("warn");
  });
});

describe("formatEvent", () => {
  it("writes event, site, step, instanceId and outcome first, then the other fields in their order; drops undefined and level, redacts secret-like names", () => {
    const line = formatEvent(EVENTS.secretExpiry, { daysLeft: 3, outcome: "ok", level: "warn", nothing: undefined, clientSecret: "s3cr3t", site: "acme.creatio.com", error: new Error("boom") });
    expect(line).toBe('{"event":"secret.expiry","site":"acme.creatio.com","outcome":"ok","daysLeft":3,"clientSecret":"[redacted]","error":"boom"}');
  });
});

import { handleKeyVaultEvent } from "../../src/functions/keyVaultEvents";
import { screenKeyVaultEvent, SECRET_EXPIRED, SECRET_NEAR_EXPIRY } from "../../src/domain/keyVaultEvent";
import { secretNameFor } from "../../src/domain/site";
import { events, fakeDurableClient, MemoryVault, recordingContext } from "./rotationFakes";

const VAULT = "https://kv-prod.vault.azure.net";
const HOST = "acme.creatio.com";
const NAME = secretNameFor(HOST);

function gridEvent(over: { eventType?: string; data?: Record<string, unknown> } = {}) {
  return {
    id: "e1",
    eventType: over.eventType ?? SECRET_NEAR_EXPIRY,
    subject: NAME,
    data: { Id: `${VAULT}/secrets/${NAME}/v1`, VaultName: "kv-prod", ObjectType: "Secret", ObjectName: NAME, Version: "v1", NBF: null, EXP: 1_800_000_000, ...over.data },
  };
}

describe("screening Key Vault events (pure)", () => {
  it("accepts SecretNearExpiry and SecretExpired for one of our secrets in our vault", () => {
    for (const eventType of [SECRET_NEAR_EXPIRY, SECRET_EXPIRED]) {
      expect(screenKeyVaultEvent(gridEvent({ eventType }), VAULT)).toEqual({
        relevant: true,
        eventType,
        host: HOST,
        secretName: NAME,
        version: "v1",
        expiresOn: new Date(1_800_000_000_000),
      });
    }
  });

  it.each([
    ["another event type", gridEvent({ eventType: "Microsoft.KeyVault.SecretNewVersionCreated" }), /does not start a rotation/],
    ["a key, not a secret", gridEvent({ data: { ObjectType: "Key" } }), /not a secret/],
    ["another vault (Id)", gridEvent({ data: { Id: `https://kv-other.vault.azure.net/secrets/${NAME}/v1` } }), /another vault/],
    ["another vault (VaultName only)", gridEvent({ data: { Id: undefined, VaultName: "kv-other" } }), /another vault/],
    ["a secret not named like ours", gridEvent({ data: { ObjectName: "db-password", Id: `${VAULT}/secrets/db-password/v1` } }), /not one of ours/],
    ["no version", gridEvent({ data: { Version: undefined } }), /no version/],
  ])("ignores %s", (_what, event, reason) => {
    const result = screenKeyVaultEvent(event, VAULT);
    expect(result.relevant).toBe(false);
    expect(!result.relevant && result.reason).toMatch(reason);
  });

  it("matches the vault by VaultName when the event carries no Id", () => {
    expect(screenKeyVaultEvent(gridEvent({ data: { Id: undefined } }), VAULT).relevant).toBe(true);
  });

  it("accepts the CloudEvents spelling of the type", () => {
    const { eventType: _e, ...rest } = gridEvent();
    expect(screenKeyVaultEvent({ ...rest, type: SECRET_NEAR_EXPIRY }, VAULT).relevant).toBe(true);
  });
});

describe("the Event Grid trigger", () => {
  function setup() {
    const vault = new MemoryVault();
    vault.site(HOST, new Date("2027-01-01T00:00:00Z")); // v1
    const { client, started, running } = fakeDurableClient();
    const { context, lines } = recordingContext("keyVaultSecretNearExpiry");
    const deps = { secrets: vault, keyVaultUrl: VAULT, gracePeriodHours: 24 };
    return { vault, client, started, running, context, lines, deps };
  }

  it("a valid event for the current version starts rotate-<host> with the configured grace period", async () => {
    const { client, started, context, lines, deps } = setup();
    expect(await handleKeyVaultEvent(gridEvent(), client, context, deps)).toBe("rotationStarted");
    expect(started).toEqual([{ name: "rotateSecret", instanceId: `rotate-${HOST}`, input: { host: HOST, gracePeriodHours: 24, trigger: "event" } }]);
    expect(events(lines, "keyvault.event")).toEqual([expect.objectContaining({ site: HOST, outcome: "rotationStarted", version: "v1" })]);
    // The same event again (Event Grid delivers at least once) meets the running rotation.
    expect(await handleKeyVaultEvent(gridEvent(), client, context, deps)).toBe("rotationRunning");
    expect(started).toHaveLength(1);
  });

  it("a stale event (its version is no longer current) is ignored", async () => {
    const { vault, client, started, context, lines, deps } = setup();
    vault.site(HOST, new Date("2028-01-01T00:00:00Z")); // v2 is current now
    expect(await handleKeyVaultEvent(gridEvent(), client, context, deps)).toBe("ignored");
    expect(started).toEqual([]);
    expect(events(lines, "keyvault.event")[0]).toMatchObject({ outcome: "ignored", reason: expect.stringMatching(/stale/) });
  });

  it("a secret named like ours but without our contentType, or an unknown one, is ignored", async () => {
    const { vault, client, started, context, deps } = setup();
    const other = "other.example.com";
    vault.seed(secretNameFor(other), "x", { contentType: "text/plain" });
    const event = gridEvent({ data: { ObjectName: secretNameFor(other), Id: `${VAULT}/secrets/${secretNameFor(other)}/v2`, Version: "v2" } });
    expect(await handleKeyVaultEvent(event, client, context, deps)).toBe("ignored");
    const gone = gridEvent({ data: { ObjectName: secretNameFor("gone.example.com"), Id: `${VAULT}/secrets/${secretNameFor("gone.example.com")}/v9`, Version: "v9" } });
    expect(await handleKeyVaultEvent(gone, client, context, deps)).toBe("ignored");
    expect(started).toEqual([]);
  });

  it("a site whose offboarding was asked for (lastRun offboard) is ignored: a rotation would fight it", async () => {
    const { vault, client, started, context, lines, deps } = setup();
    vault.site(HOST, new Date("2027-01-01T00:00:00Z"), { lastRun: { kind: "offboard", outcome: "failed", step: "unlinkCreatio", at: "2026-11-27T10:00:00.000Z" } });
    const current = vault.latest(secretNameFor(HOST))!.properties.version!;
    const event = gridEvent({ data: { Id: `${VAULT}/secrets/${secretNameFor(HOST)}/${current}`, Version: current } });
    expect(await handleKeyVaultEvent(event, client, context, deps)).toBe("ignored");
    expect(started).toEqual([]);
    expect(events(lines, "keyvault.event")[0]).toMatchObject({ outcome: "ignored", reason: expect.stringMatching(/offboarded/) });
  });

  it("never reads more than properties into its log lines", async () => {
    const { client, context, lines, deps } = setup();
    await handleKeyVaultEvent(gridEvent(), client, context, deps);
    expect(lines.join("\n")).not.toContain(`secret-of-${HOST}`);
  });
});

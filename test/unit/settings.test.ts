import { parseSettings, settingsProblems } from "../../src/settings";

const minimal = { AzureWebJobsStorage: "UseDevelopmentStorage=true", KEY_VAULT_URL: "https://kv.vault.azure.net/" };

describe("settings", () => {
  it("applies the documented defaults", () => {
    expect(parseSettings(minimal)).toEqual({
      ADMIN_CONSENT_WAIT_HOURS: 168,
      AzureWebJobsStorage: "UseDevelopmentStorage=true",
      KEY_VAULT_URL: "https://kv.vault.azure.net",
      GRAPH_BASE_URL: "https://graph.microsoft.com",
      ROTATION_SCHEDULE: "0 0 3 * * *",
      ROTATE_DAYS_BEFORE_EXPIRY: 30,
      ROTATION_SWEEP_CONCURRENCY: 8,
      OLD_SECRET_GRACE_HOURS: 24,
      AZURE_DISABLE_INSTANCE_DISCOVERY: false,
      KEY_VAULT_DISABLE_CHALLENGE_VERIFICATION: false,
      CREATIO_ALLOW_LOOPBACK: false,
      EWS_ACCESS: "check",
      EXCHANGE_ADMIN_URL: "https://outlook.office365.com",
      PERMISSION_PROFILES: [],
    });
  });

  it("PERMISSION_PROFILES: a JSON array or an object by name of profiles; every problem names the setting", () => {
    const graph = { resources: [{ appId: "00000003-0000-0000-c000-000000000000", scopes: ["Mail.Send", "User.Read"] }] };
    const expected = [{ name: "creatio-graph", redirectPath: "/0/rest/Office365OAuthAuthenticator/ProcessAuthenticationCode", ...graph }];
    expect(parseSettings({ ...minimal, PERMISSION_PROFILES: JSON.stringify([{ name: "creatio-graph", ...graph }]) }).PERMISSION_PROFILES).toEqual(expected);
    expect(parseSettings({ ...minimal, PERMISSION_PROFILES: JSON.stringify({ "creatio-graph": graph }) }).PERMISSION_PROFILES).toEqual(expected);
    expect(parseSettings({ ...minimal, PERMISSION_PROFILES: " " }).PERMISSION_PROFILES).toEqual([]);
    const problem = (value: unknown) => settingsProblems({ ...minimal, PERMISSION_PROFILES: typeof value === "string" ? value : JSON.stringify(value) });
    expect(problem("[{")).toEqual([{ name: "PERMISSION_PROFILES", message: expect.stringMatching(/^PERMISSION_PROFILES is not JSON: set it to a JSON array of profiles/) }]);
    expect(problem("42")[0]!.message).toMatch(/^PERMISSION_PROFILES must be a JSON array of profiles/);
    expect(problem({ "creatio-graph": { resources: [{ appId: "graph", scopes: ["User.Read"] }] } })).toEqual([
      { name: "PERMISSION_PROFILES", message: 'PERMISSION_PROFILES profile "creatio-graph": resources.0.appId must be a GUID' },
    ]);
    expect(problem([{ name: "x", resources: [{ appId: graph.resources[0]!.appId, scopes: ["Mail Send"] }] }])[0]!.message).toBe("PERMISSION_PROFILES profile [0]: resources.0.scopes.0 must be a scope value such as Mail.Send");
    expect(problem([{ name: "Graph Profile", ...graph }])[0]!.message).toBe("PERMISSION_PROFILES profile [0]: name must be lower-case letters, digits and hyphens (at most 63)");
    expect(problem([{ name: "creatio-ews", ...graph }])[0]!.message).toBe("PERMISSION_PROFILES profile [0]: the name creatio-ews is built in; pick another");
    expect(problem([{ name: "a", ...graph }, { name: "a", ...graph }])[0]!.message).toBe("PERMISSION_PROFILES profile [1]: the name a is used twice; pick another");
    expect(problem({ a: { name: "b", ...graph } })[0]!.message).toBe('PERMISSION_PROFILES profile "a": its name differs from its key');
    expect(problem([{ name: "a", resources: [] }])[0]!.message).toMatch(/^PERMISSION_PROFILES profile \[0\]: resources /);
    expect(() => parseSettings({ ...minimal, PERMISSION_PROFILES: "[{" })).toThrow(/Invalid app settings: PERMISSION_PROFILES is not JSON/);
  });

  it("EWS_ACCESS is manage, check or off; EXCHANGE_ADMIN_URL an https URL", () => {
    expect(parseSettings({ ...minimal, EWS_ACCESS: "manage", EXCHANGE_ADMIN_URL: "https://outlook.office365.us/" })).toMatchObject({ EWS_ACCESS: "manage", EXCHANGE_ADMIN_URL: "https://outlook.office365.us" });
    expect(() => parseSettings({ ...minimal, EWS_ACCESS: "yes" })).toThrow(/EWS_ACCESS must be manage, check or off/);
    expect(() => parseSettings({ ...minimal, EXCHANGE_ADMIN_URL: "http://outlook.office365.com" })).toThrow(/EXCHANGE_ADMIN_URL must be an https:\/\/ URL/);
  });

  it("reads every setting, fractions of hours and booleans included", () => {
    const s = parseSettings({
      ...minimal,
      GRAPH_BASE_URL: "https://localhost:9443",
      AZURE_CLIENT_ID: "cid",
      AZURE_TENANT_ID: "tid",
      ROTATION_SCHEDULE: "*/30 * * * * *",
      ROTATE_DAYS_BEFORE_EXPIRY: "10",
      OLD_SECRET_GRACE_HOURS: "0.001",
      AZURE_AUTHORITY_HOST: "https://localhost:9443",
      AZURE_DISABLE_INSTANCE_DISCOVERY: "true",
      KEY_VAULT_DISABLE_CHALLENGE_VERIFICATION: "yes",
    });
    expect(s.OLD_SECRET_GRACE_HOURS).toBe(0.001);
    expect(s.KEY_VAULT_DISABLE_CHALLENGE_VERIFICATION).toBe(true);
    expect(s.AZURE_DISABLE_INSTANCE_DISCOVERY).toBe(true);
    expect(s.ROTATE_DAYS_BEFORE_EXPIRY).toBe(10);
    expect(s.AZURE_CLIENT_ID).toBe("cid");
  });

  it.each([
    [{ KEY_VAULT_URL: minimal.KEY_VAULT_URL }, /AzureWebJobsStorage is required/],
    [{ AzureWebJobsStorage: "x" }, /KEY_VAULT_URL is required/],
    [{ ...minimal, KEY_VAULT_URL: "http://kv" }, /KEY_VAULT_URL must be an https/],
    [{ ...minimal, GRAPH_BASE_URL: "not a url" }, /GRAPH_BASE_URL/],
    [{ ...minimal, ROTATE_DAYS_BEFORE_EXPIRY: "soon" }, /ROTATE_DAYS_BEFORE_EXPIRY/],
    [{ ...minimal, OLD_SECRET_GRACE_HOURS: "-1" }, /OLD_SECRET_GRACE_HOURS/],
    [{ ...minimal, ROTATION_SCHEDULE: "0 3 * * *" }, /ROTATION_SCHEDULE must be a six-field/],
    [{ ...minimal, AZURE_DISABLE_INSTANCE_DISCOVERY: "maybe" }, /AZURE_DISABLE_INSTANCE_DISCOVERY must be true or false/],
  ])("names the bad setting (%#)", (env, message) => {
    expect(() => parseSettings(env)).toThrow(message);
  });

  it("never echoes a setting's value", () => {
    expect(() => parseSettings({ ...minimal, KEY_VAULT_URL: "ftp://AccountKey=topsecret" })).toThrow(/^(?!.*topsecret)/s);
  });
});

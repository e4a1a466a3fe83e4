// Issue 14: invalid app settings answer 503 naming them (HTTP) or one error line (timer, Event
// Grid), never an empty 500 or a crash loop; npm start refuses them before starting anything.
import { HttpRequest, InvocationContext } from "@azure/functions";
import type { DurableClient } from "durable-functions";
import { answeringSettingsErrors, loggingSettingsErrors } from "../../src/functions/responses";
import { parseSettings, SettingsError } from "../../src/settings";
import { explainSettingsProblems, localSettingsView, sandboxSettingsView, settingsFailureReport } from "../../dev/settingsCheck";

function recording() {
  const lines: { level: string; text: string }[] = [];
  const context = new InvocationContext({ functionName: "test", logHandler: (level, ...args) => lines.push({ level, text: args.map(String).join(" ") }) });
  return { context, lines };
}

const BAD = { AzureWebJobsStorage: "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=S3CR3T-KEY==", KEY_VAULT_URL: "https://<your-vault>.vault.azure.net" };

describe("answeringSettingsErrors", () => {
  it("answers 503 naming the settings, never their values", async () => {
    const { context, lines } = recording();
    const handler = answeringSettingsErrors(async (_req: HttpRequest, _ctx: InvocationContext) => {
      parseSettings({ ...BAD, ROTATE_DAYS_BEFORE_EXPIRY: "soon" });
      return { status: 200 };
    });
    const response = await handler(new HttpRequest({ method: "GET", url: "http://localhost/api/tenants" }), context);
    expect(response).toMatchObject({ status: 503, jsonBody: { error: expect.stringMatching(/^Invalid app settings: KEY_VAULT_URL must be an https:\/\/ URL; ROTATE_DAYS_BEFORE_EXPIRY must be a number$/) } });
    expect(JSON.stringify(response)).not.toMatch(/your-vault|S3CR3T|soon/);
    expect(lines).toEqual([expect.objectContaining({ level: "error", text: expect.stringMatching(/KEY_VAULT_URL/) })]);
  });

  it("lets every other error through (the invocation fails as before)", async () => {
    const { context } = recording();
    const handler = answeringSettingsErrors(async (_ctx: InvocationContext) => {
      throw new TypeError("a bug");
    });
    await expect(handler(context)).rejects.toThrow("a bug");
  });

  it("passes answers through untouched", async () => {
    const { context } = recording();
    const handler = answeringSettingsErrors(async (status: number, _ctx: InvocationContext) => ({ status }));
    await expect(handler(202, context)).resolves.toEqual({ status: 202 });
  });

  it("wraps the real handlers: settings read from the environment answer 503, not an empty 500", async () => {
    const saved = { ...process.env };
    try {
      Object.assign(process.env, BAD);
      // Fresh modules read the environment anew: settings are parsed once per module instance.
      let answeringSettingsErrors!: typeof import("../../src/functions/responses").answeringSettingsErrors;
      let listTenants!: typeof import("../../src/functions/tenants").listTenants;
      let createTenant!: typeof import("../../src/functions/tenants").createTenant;
      jest.isolateModules(() => {
        ({ answeringSettingsErrors } = require("../../src/functions/responses") as typeof import("../../src/functions/responses"));
        ({ listTenants, createTenant } = require("../../src/functions/tenants") as typeof import("../../src/functions/tenants"));
      });
      const { context } = recording();
      const list = answeringSettingsErrors((request: HttpRequest, ctx: InvocationContext) => listTenants(request, ctx));
      const response = await list(new HttpRequest({ method: "GET", url: "http://localhost/api/tenants" }), context);
      expect(response).toMatchObject({ status: 503, jsonBody: { error: expect.stringMatching(/KEY_VAULT_URL/) } });
      const create = answeringSettingsErrors((request: HttpRequest, client: DurableClient, ctx: InvocationContext) => createTenant(request, client, ctx));
      const created = await create(new HttpRequest({ method: "POST", url: "http://localhost/api/tenants", body: { string: "{}" }, headers: { "content-type": "application/json" } }), {} as DurableClient, context);
      expect(created).toMatchObject({ status: 503 });
    } finally {
      process.env = saved;
    }
  });
});

describe("loggingSettingsErrors", () => {
  it("logs the SettingsError at error level and ends the invocation without failing", async () => {
    const { context, lines } = recording();
    const handler = loggingSettingsErrors(async (_timer: unknown, _ctx: InvocationContext) => {
      throw new SettingsError("Invalid app settings: KEY_VAULT_URL must be an https:// URL");
    });
    await expect(handler({}, context)).resolves.toBeUndefined();
    expect(lines).toEqual([{ level: "error", text: expect.stringMatching(/^Invalid app settings: KEY_VAULT_URL must be an https:\/\/ URL/) }]);
  });

  it("lets every other error through (Event Grid retries a Key Vault outage)", async () => {
    const { context } = recording();
    const handler = loggingSettingsErrors(async (_ctx: InvocationContext) => {
      throw new Error("Key Vault unreachable");
    });
    await expect(handler(context)).rejects.toThrow("Key Vault unreachable");
  });
});

describe("npm start checks its settings first (dev/settingsCheck.ts)", () => {
  const example = {
    FUNCTIONS_WORKER_RUNTIME: "node",
    AzureWebJobsStorage: "UseDevelopmentStorage=true",
    KEY_VAULT_URL: "https://<your-vault>.vault.azure.net",
    GRAPH_BASE_URL: "https://graph.microsoft.com",
    ROTATION_SCHEDULE: "0 0 3 * * *",
    ROTATE_DAYS_BEFORE_EXPIRY: "30",
    OLD_SECRET_GRACE_HOURS: "24",
    CREATIO_ALLOW_LOOPBACK: "false",
  };

  it("names each bad setting of local.settings.json with what to do, never its value", () => {
    const view = localSettingsView({ ...example, OLD_SECRET_GRACE_HOURS: "a day" }, {});
    const lines = explainSettingsProblems(view.values, view.originOf);
    expect(lines).toEqual([
      "KEY_VAULT_URL in local.settings.json must be an https:// URL: set it to your vault's URI (az keyvault show -n <vault> --query properties.vaultUri), or delete local.settings.json to run against the local emulators",
      expect.stringMatching(/^OLD_SECRET_GRACE_HOURS in local\.settings\.json must be a number: give hours from 0 to 720/),
    ]);
    expect(lines.join("\n")).not.toMatch(/your-vault|a day/);
    expect(settingsFailureReport(lines)).toMatch(/^npm start: invalid app settings; nothing was started\.\n  - KEY_VAULT_URL/);
  });

  it("blames the environment when a variable overrides the file", () => {
    const view = localSettingsView(example, { KEY_VAULT_URL: "https://kv.vault.azure.net", ROTATE_DAYS_BEFORE_EXPIRY: "0" });
    expect(explainSettingsProblems(view.values, view.originOf)).toEqual([expect.stringMatching(/^ROTATE_DAYS_BEFORE_EXPIRY in the environment must be at least 1: .*fix or unset it/)]);
  });

  it("passes the example once KEY_VAULT_URL names a vault, and the sandbox defaults", () => {
    const view = localSettingsView({ ...example, KEY_VAULT_URL: "https://kv-acme.vault.azure.net/" }, {});
    expect(explainSettingsProblems(view.values, view.originOf)).toEqual([]);
    const sandbox = sandboxSettingsView({ AzureWebJobsStorage: "UseDevelopmentStorage=true", KEY_VAULT_URL: "https://localhost:7102", CREATIO_ALLOW_LOOPBACK: "true" }, {});
    expect(explainSettingsProblems(sandbox.values, sandbox.originOf)).toEqual([]);
  });

  it("checks the sandbox's environment overrides", () => {
    const sandbox = sandboxSettingsView({ AzureWebJobsStorage: "UseDevelopmentStorage=true", KEY_VAULT_URL: "https://localhost:7102" }, { CREATIO_ALLOW_LOOPBACK: "maybe", KEY_VAULT_URL: undefined });
    expect(explainSettingsProblems(sandbox.values, sandbox.originOf)).toEqual([expect.stringMatching(/^CREATIO_ALLOW_LOOPBACK in the environment must be true or false/)]);
  });
});

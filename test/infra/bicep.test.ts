/**
 * infra/ against the code, read as text (no Bicep compiler can be installed here): every setting
 * the app's settings schema needs is set in the Function App's app settings, every setting
 * local.settings.example.json lists is too, none holds a literal secret, and the hand-wired names
 * between main.bicep, resources.bicep, main.parameters.json, azure.yaml and the hooks agree.
 */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { parseSettings, settingsSchema } from "../../src/settings";
import { EVENTS } from "../../src/observability";
import { REPO_ROOT, bicepAppSettings, bicepOutputs, bicepParams, blockAfter, literal, properties, readInfra } from "./support/bicep";

const appSettings = bicepAppSettings();
const main = readInfra("main.bicep");
const resources = readInfra("resources.bicep");
const mainParams = bicepParams(main);

/**
 * A sample value for each Bicep expression the app settings use, as Azure would resolve it. An
 * expression not listed here fails the test: extend the table rather than guess.
 */
function resolveExpression(name: string, expr: string): string {
  const lit = literal(expr);
  if (lit !== undefined) return lit;
  const fromParam = (param: string) => {
    const def = mainParams.get(param);
    if (def === undefined) throw new Error(`${name}: ${param} is not a parameter of main.bicep`);
    return literal(def) ?? def; // numbers and booleans stay as written
  };
  const known: Record<string, string> = {
    "storage.name": "stabcdefghijklm",
    "identity.properties.clientId": "11111111-2222-3333-4444-555555555555",
    "appInsights.properties.ConnectionString":
      "InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=https://westeurope-5.in.applicationinsights.azure.com/",
    "keyVault.properties.vaultUri": "https://kv-abcdefghijklm.vault.azure.net/",
    "tenant().tenantId": "99999999-8888-7777-6666-555555555555",
    "environment().authentication.loginEndpoint": "https://login.microsoftonline.com/",
    "'https://${functionApp.properties.defaultHostName}/api/consent/callback'": "https://func-abcdefghijklm.azurewebsites.net/api/consent/callback",
  };
  if (expr in known) return known[expr];
  const str = /^string\((\w+)\)$/.exec(expr);
  if (str) return fromParam(str[1]);
  if (/^\w+$/.test(expr)) return fromParam(expr);
  if (/^'ClientId=\$\{identity\.properties\.clientId\};Authorization=AAD'$/.test(expr)) return `ClientId=${known["identity.properties.clientId"]};Authorization=AAD`;
  throw new Error(`${name}: no sample value for the Bicep expression ${expr}; add it to resolveExpression`);
}

/** The environment the app gets in Azure. */
function azureEnv(): Record<string, string> {
  return Object.fromEntries([...appSettings].map(([name, expr]) => [name, resolveExpression(name, expr)]));
}

/** Settings the schema cannot do without: neither optional nor defaulted. */
function requiredSettings(): string[] {
  return Object.keys(settingsSchema.shape).filter((key) => {
    const probe = settingsSchema.shape[key as keyof typeof settingsSchema.shape].safeParse(undefined);
    return !probe.success;
  });
}

describe("app settings in infra/resources.bicep", () => {
  test("every setting of src/settings.ts is set, host storage through the identity", () => {
    // Set by the platform for every app, not an app setting.
    const platformSet: Record<string, string> = { WEBSITE_HOSTNAME: "the app's default host name (App Service environment variable)" };
    const missing = Object.keys(settingsSchema.shape).filter((key) => {
      if (key in platformSet) return false;
      if (key === "AzureWebJobsStorage") {
        // Identity-based host storage: AzureWebJobsStorage__accountName/__credential/__clientId
        // (learn.microsoft.com/azure/azure-functions/functions-reference#connecting-to-host-storage-with-an-identity).
        return !["__accountName", "__credential", "__clientId"].every((s) => appSettings.has(`AzureWebJobsStorage${s}`));
      }
      return !appSettings.has(key);
    });
    expect(missing).toEqual([]);
    expect(requiredSettings()).toContain("KEY_VAULT_URL"); // the probe above really finds required ones
    expect(appSettings.get("AzureWebJobsStorage__credential")).toBe("'managedidentity'");
  });

  test("the settings Azure gets pass the app's schema (host storage given as the host reads it)", () => {
    const env: Record<string, string> = { ...azureEnv(), AzureWebJobsStorage: "identity-based: AzureWebJobsStorage__accountName" };
    const settings = parseSettings(env);
    expect(settings.KEY_VAULT_URL).toBe("https://kv-abcdefghijklm.vault.azure.net");
    expect(settings.AZURE_CLIENT_ID).toBe(env.AzureWebJobsStorage__clientId);
    expect(settings.GRAPH_BASE_URL).toBe("https://graph.microsoft.com");
    expect(settings.AZURE_AUTHORITY_HOST).toBe("https://login.microsoftonline.com");
    expect(settings.AZURE_DISABLE_INSTANCE_DISCOVERY).toBe(false);
    expect(settings.ROTATION_SCHEDULE.split(/\s+/)).toHaveLength(6);
  });

  // Identity-based host storage: Azure sets only AzureWebJobsStorage__accountName/__credential/__clientId.
  test("the settings exactly as deployed pass the app's schema", () => {
    expect(() => parseSettings(azureEnv())).not.toThrow();
  });

  test("every setting local.settings.example.json lists is set (local-only ones excepted, with reasons)", () => {
    const file = path.join(REPO_ROOT, "local.settings.example.json");
    expect(existsSync(file)).toBe(true);
    const values = Object.keys((JSON.parse(readFileSync(file, "utf8")) as { Values: Record<string, string> }).Values);
    const localOnly: Record<string, string> = {
      // Flex Consumption takes the runtime from functionAppConfig.runtime and rejects this setting.
      FUNCTIONS_WORKER_RUNTIME: "functionAppConfig.runtime",
      // Worker indexing is how programming model v4 always loads in Azure.
      AzureWebJobsFeatureFlags: "default in Azure",
      // A connection string locally; identity-based settings (checked above) in Azure.
      AzureWebJobsStorage: "AzureWebJobsStorage__accountName",
    };
    expect(values.filter((v) => !(v in localOnly) && !appSettings.has(v))).toEqual([]);
    expect(resources).toMatch(/runtime:\s*\{\s*name:\s*'node'\s*version:\s*'20'/);
  });

  test("no app setting holds a literal secret", () => {
    const problems: string[] = [];
    for (const [name, expr] of appSettings) {
      if (/listKeys|listConnectionStrings|listSecrets|primaryKey|secondaryKey|\.keys\b/i.test(expr)) problems.push(`${name} reads a key: ${expr}`);
      if (/AccountKey=|SharedAccessKey=|SharedAccessSignature=|[?&]sig=|password|pwd=|secret=/i.test(expr)) problems.push(`${name} holds a credential: ${expr}`);
      if (literal(expr) !== undefined && /(KEY|SECRET|PASSWORD|TOKEN|CONNECTION_STRING)$/i.test(name)) problems.push(`${name} is a literal: ${expr}`);
      if (/getSecret\(|@Microsoft\.KeyVault/i.test(expr)) problems.push(`${name} pulls a secret into the settings: ${expr}`);
    }
    // The App Insights connection string carries only an instrumentation key, which cannot ingest
    // while local authentication is disabled (ingestion needs the Entra token of the identity).
    if (appSettings.has("APPLICATIONINSIGHTS_CONNECTION_STRING")) {
      expect(resources).toMatch(/DisableLocalAuth:\s*true/);
      expect(appSettings.get("APPLICATIONINSIGHTS_AUTHENTICATION_STRING")).toContain("Authorization=AAD");
    }
    expect(problems).toEqual([]);
  });

  test("the checks above can fail: a key-bearing setting is caught", () => {
    const bad = "'DefaultEndpointsProtocol=https;AccountName=x;AccountKey=abc=='";
    expect(/AccountKey=/i.test(bad) && literal(bad) !== undefined).toBe(true);
    expect(() => resolveExpression("X", "storage.listKeys().keys[0].value")).toThrow(/no sample value/);
  });

  test("no setting that Flex Consumption rejects or that would override identity storage", () => {
    for (const name of ["FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_EXTENSION_VERSION", "WEBSITE_NODE_DEFAULT_VERSION", "WEBSITE_RUN_FROM_PACKAGE", "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING", "AzureWebJobsStorage"]) {
      expect(appSettings.has(name)).toBe(false);
    }
  });
});

describe("no keys anywhere in infra/", () => {
  const all = ["main.bicep", "resources.bicep", "app/keyvault-events.bicep", "app/alerts.bicep", "graph-permissions.bicep"].map((f) => [f, readInfra(f)] as const);

  test("no template reads a key or connection string", () => {
    for (const [file, text] of all) expect(`${file}: ${/listKeys\(|listConnectionStrings\(|\.listKeys\(/.test(text)}`).toBe(`${file}: false`);
  });

  test("storage allows no shared key; Key Vault is RBAC with soft delete and purge protection", () => {
    const storage = properties(blockAfter(blockAfter(resources, "resource storage 'Microsoft.Storage/storageAccounts"), "properties:"));
    expect(storage.get("allowSharedKeyAccess")).toBe("false");
    expect(storage.get("allowBlobPublicAccess")).toBe("false");
    const vault = properties(blockAfter(blockAfter(resources, "resource keyVault 'Microsoft.KeyVault/vaults"), "properties:"));
    expect(vault.get("enableRbacAuthorization")).toBe("true");
    expect(vault.get("enableSoftDelete")).toBe("true");
    expect(vault.get("enablePurgeProtection")).toBe("true");
    // Flex deployment container reached with the identity, not a connection string.
    expect(resources).toMatch(/authentication:\s*\{\s*type:\s*'UserAssignedIdentity'/);
  });

  test("the identity is Key Vault Secrets Officer on the vault only", () => {
    const block = blockAfter(resources, "resource keyVaultIdentityRole");
    expect(properties(block).get("scope")).toBe("keyVault");
    expect(block).toContain("roles.keyVaultSecretsOfficer");
    const officerAssignments = [...resources.matchAll(/resource (\w+) 'Microsoft\.Authorization\/roleAssignments[^']*'[^{]*\{([\s\S]*?)\n\}/g)].filter(([, , body]) =>
      body.includes("keyVaultSecretsOfficer"),
    );
    for (const [, name, body] of officerAssignments) expect(`${name} scope ${/scope:\s*(\w+)/.exec(body)?.[1]}`).toBe(`${name} scope keyVault`);
  });
});

describe("wiring between the templates, azd and the hooks", () => {
  test("every module parameter main.bicep passes exists in the module, and every required one is passed", () => {
    for (const [module, file] of [
      ["resources", "resources.bicep"],
      ["keyVaultEvents", "app/keyvault-events.bicep"],
      ["graphPermissions", "graph-permissions.bicep"],
    ] as const) {
      const passed = [...properties(blockAfter(blockAfter(main, `module ${module} `), "params:")).keys()];
      const declared = bicepParams(readInfra(file));
      expect({ module, unknown: passed.filter((p) => !declared.has(p)) }).toEqual({ module, unknown: [] });
      const required = [...declared].filter(([, def]) => def === "").map(([p]) => p);
      expect({ module, missing: required.filter((p) => !passed.includes(p)) }).toEqual({ module, missing: [] });
    }
    const alertsPassed = [...properties(blockAfter(blockAfter(resources, "module alerts "), "params:")).keys()];
    const alertsDeclared = bicepParams(readInfra("app/alerts.bicep"));
    expect(alertsPassed.filter((p) => !alertsDeclared.has(p))).toEqual([]);
  });

  test("main.bicep reads only outputs resources.bicep declares", () => {
    const outputs = bicepOutputs(resources);
    const used = [...main.matchAll(/resources\.outputs\.(\w+)/g)].map((m) => m[1]);
    expect(used.filter((o) => !outputs.includes(o))).toEqual([]);
  });

  test("main.parameters.json names only main.bicep parameters and covers the required ones", () => {
    const json = JSON.parse(readInfra("main.parameters.json")) as { parameters: Record<string, unknown> };
    const names = Object.keys(json.parameters);
    expect(names.filter((n) => !mainParams.has(n))).toEqual([]);
    const required = [...mainParams].filter(([, def]) => def === "").map(([p]) => p);
    expect(required.filter((p) => !names.includes(p))).toEqual([]);
  });

  test("the postdeploy hook and the permission script use outputs main.bicep declares", () => {
    const outputs = bicepOutputs(main);
    for (const file of ["hooks/postdeploy.sh", "grant-graph-permissions.sh", "provisioner.sh"]) {
      const text = readInfra(file);
      const used = [...text.matchAll(/\$\{?(AZURE_[A-Z_]+|EVENT_GRID_[A-Z_]+|KEY_VAULT_[A-Z_]+|KEYVAULT_[A-Z_]+)/g)].map((m) => m[1]);
      expect({ file, unknown: [...new Set(used)].filter((u) => !outputs.includes(u)) }).toEqual({ file, unknown: [] });
    }
    const azureYaml = readFileSync(path.join(REPO_ROOT, "azure.yaml"), "utf8");
    expect(azureYaml).toMatch(/run: \.\/infra\/hooks\/postdeploy\.sh/);
    // azd deploys the folder `npm run package` makes (scripts/package.ts default outDir).
    expect(azureYaml).toMatch(/^ {4}dist: dist\/deploy$/m);
    expect(readFileSync(path.join(REPO_ROOT, "scripts", "package.ts"), "utf8")).toContain('join("dist", "deploy")');
    expect(azureYaml).toMatch(/run: npm run package/);
    // azd finds the app by the service name tag.
    expect(azureYaml).toMatch(/^ {2}api:$/m);
    expect(resources).toContain("'azd-service-name': 'api'");
  });

  test("the alert rules query the events src/observability.ts defines", () => {
    const alerts = readInfra("app/alerts.bicep");
    for (const event of [EVENTS.onboardingFinished, EVENTS.rotationFinished, EVENTS.secretExpiry, EVENTS.sweepStarted, EVENTS.sweepFinished, EVENTS.siteNotMailReady]) {
      expect(alerts).toContain(`"${event}"`);
    }
    // ...and only those (a renamed event would silently stop an alert).
    const quoted = [...alerts.matchAll(/event (?:==|in) (\([^)]*\)|"[^"]*")/g)].flatMap((m) => [...m[1].matchAll(/"([^"]*)"/g)].map((q) => q[1]));
    expect(quoted.length).toBeGreaterThanOrEqual(6);
    expect(quoted.filter((e) => !(Object.values(EVENTS) as string[]).includes(e))).toEqual([]);
  });
});

// `npm start` checks the settings it will give the host with the app's own schema (src/settings.ts)
// before it starts anything, and says what to do about each bad one. Never prints a value: a
// connection string may carry an account key.
import { settingsProblems } from "../src/settings";

/** Where a setting came from, as the message names it. */
export type SettingOrigin = "local.settings.json" | "the environment" | "the sandbox defaults";

const URL_HINT: Record<string, string> = {
  KEY_VAULT_URL: "set it to your vault's URI (az keyvault show -n <vault> --query properties.vaultUri)",
  GRAPH_BASE_URL: "leave it empty for https://graph.microsoft.com, or set your national cloud's Microsoft Graph endpoint (e.g. https://graph.microsoft.us)",
  AZURE_AUTHORITY_HOST: "leave it empty for the public cloud, or set your cloud's Entra ID endpoint (e.g. https://login.microsoftonline.us)",
};

const HINT: Record<string, string> = {
  ...URL_HINT,
  AzureWebJobsStorage: "set it to UseDevelopmentStorage=true (npm start then runs Azurite) or to a storage account connection string",
  ROTATION_SCHEDULE: "give six NCRONTAB fields, e.g. 0 0 3 * * * (daily at 03:00 UTC), or leave it empty for that default",
  ROTATE_DAYS_BEFORE_EXPIRY: "give a whole number of days from 1 to 700, or leave it empty for 30",
  OLD_SECRET_GRACE_HOURS: "give hours from 0 to 720 (fractions allowed), or leave it empty for 24",
  AZURE_DISABLE_INSTANCE_DISCOVERY: "set it to true or false, or leave it empty for false",
  CREATIO_ALLOW_LOOPBACK: "set it to true or false, or leave it empty for false",
};

/**
 * One line per bad setting, e.g. "KEY_VAULT_URL in local.settings.json must be an https:// URL:
 * set it to your vault's URI (...), or delete local.settings.json to run against the local
 * emulators". Empty when the settings pass the app's schema.
 */
export function explainSettingsProblems(values: Record<string, string | undefined>, originOf: (name: string) => SettingOrigin): string[] {
  return settingsProblems(values).map(({ name, message }) => {
    const origin = originOf(name);
    const rule = message.startsWith(name) ? message.slice(name.length).trim() : message;
    let hint = HINT[name] ?? "see the settings in README.md";
    if (origin === "local.settings.json") hint += ", or delete local.settings.json to run against the local emulators";
    if (origin === "the environment") hint += ` (the environment variable wins over any file or default: fix or unset it)`;
    return `${name} in ${origin} ${rule}: ${hint}`;
  });
}

/**
 * The settings the host gets with local.settings.json (its Values, under variables already set in
 * the environment, as dev/host and `func start` load them), with where each came from.
 */
export function localSettingsView(values: Record<string, string>, env: Record<string, string | undefined>) {
  const merged: Record<string, string | undefined> = { ...values };
  for (const [key, value] of Object.entries(env)) if (value !== undefined) merged[key] = value;
  const originOf = (name: string): SettingOrigin => (env[name] !== undefined ? "the environment" : "local.settings.json");
  return { values: merged, originOf };
}

/** The sandbox's settings: its defaults, overridden by the environment. */
export function sandboxSettingsView(defaults: Record<string, string>, env: Record<string, string | undefined>) {
  const merged: Record<string, string | undefined> = { ...defaults };
  for (const key of Object.keys(defaults)) if (env[key] !== undefined) merged[key] = env[key];
  // Settings the sandbox does not set but the app reads, when set in the environment.
  for (const [key, value] of Object.entries(env)) if (!(key in merged) && value !== undefined) merged[key] = value;
  const originOf = (name: string): SettingOrigin => (env[name] !== undefined ? "the environment" : "the sandbox defaults");
  return { values: merged, originOf };
}

/** The message npm start prints before it exits non-zero. */
export function settingsFailureReport(lines: string[]): string {
  return [`npm start: invalid app settings; nothing was started.`, ...lines.map((l) => `  - ${l}`)].join("\n");
}

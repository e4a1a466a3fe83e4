/**
 * Every function the app registers is reachable in Azure: HTTP and Durable triggers need nothing
 * more, the timer is named by the "no sweep succeeded" alert, and the Event Grid function is the one
 * the Key Vault event subscription delivers to (Event Grid's AzureFunction endpoint names the
 * function: <site id>/functions/<name>). Registrations come from loading the compiled app under the
 * local host's functions-core shim (test/infra/support/registrations.ts).
 */
import { bicepParams, literal, readInfra } from "./support/bicep";
import { appRegistrations } from "./support/registrations";

const registrations = appRegistrations();
const eventGridFunctions = registrations.filter((r) => r.triggerType === "eventgridtrigger").map((r) => r.name);
const timerFunctions = registrations.filter((r) => r.triggerType === "timertrigger").map((r) => r.name);

/** The Event Grid function name every place in infra/ uses. */
function subscribedFunctionNames(): Record<string, string | undefined> {
  const params = JSON.parse(readInfra("main.parameters.json")) as { parameters: Record<string, { value: string }> };
  const fromAzdDefault = /=\s*([^}]*)\}/.exec(params.parameters.keyVaultEventFunctionName.value)?.[1];
  return {
    "app/keyvault-events.bicep": literal(bicepParams(readInfra("app/keyvault-events.bicep")).get("functionName") ?? ""),
    "main.bicep": literal(bicepParams(readInfra("main.bicep")).get("keyVaultEventFunctionName") ?? ""),
    "main.parameters.json": fromAzdDefault,
    "hooks/postdeploy.sh": /KEYVAULT_EVENT_FUNCTION_NAME:-(\w+)/.exec(readInfra("hooks/postdeploy.sh"))?.[1],
  };
}

test("the app registers functions, all of trigger types infra/ provides for", () => {
  expect(registrations.length).toBeGreaterThan(0);
  const provided = ["httptrigger", "activitytrigger", "orchestrationtrigger", "entitytrigger", "timertrigger", "eventgridtrigger"];
  // A queue, blob or Service Bus trigger would need a connection and roles that infra/ does not create.
  expect(registrations.filter((r) => !provided.includes(r.triggerType)).map((r) => `${r.name}: ${r.triggerType}`)).toEqual([]);
});

test("infra/ names one Event Grid function everywhere", () => {
  const names = subscribedFunctionNames();
  const distinct = new Set(Object.values(names));
  expect(names).toEqual(Object.fromEntries(Object.keys(names).map((k) => [k, [...distinct][0]])));
  expect([...distinct][0]).toMatch(/^\w+$/);
});

test("the subscription subscribes SecretNearExpiry and SecretExpired through an AzureFunction endpoint", () => {
  const text = readInfra("app/keyvault-events.bicep");
  expect(text).toContain("'Microsoft.KeyVault.SecretNearExpiry'");
  expect(text).toContain("'Microsoft.KeyVault.SecretExpired'");
  expect(text).toContain("endpointType: 'AzureFunction'");
  expect(text).toContain("resourceId: '${functionApp.id}/functions/${functionName}'");
});

// Until the app registers its Event Grid trigger (rotation work) there is nothing to match: the
// test is skipped, by name, rather than passing vacuously.
(eventGridFunctions.length > 0 ? test : test.skip)(
  `the Event Grid subscription delivers to a function the app registers (registered: ${eventGridFunctions.join(", ") || "none yet"})`,
  () => {
    const name = Object.values(subscribedFunctionNames())[0];
    expect(eventGridFunctions).toContain(name);
  },
);

(timerFunctions.length > 0 ? test : test.skip)(
  `the "no sweep succeeded" alert watches the timer the app registers (registered: ${timerFunctions.join(", ") || "none yet"})`,
  () => {
    const sweep = literal(bicepParams(readInfra("app/alerts.bicep")).get("sweepFunctionName") ?? "");
    expect(timerFunctions).toContain(sweep);
    // The timer's schedule comes from the ROTATION_SCHEDULE app setting, which the alert assumes is daily.
    const timer = registrations.find((r) => r.name === sweep)!;
    expect(String(timer.trigger.schedule)).toBe("%ROTATION_SCHEDULE%");
    // It watches for a sweep that succeeded, not for an invocation: with invalid settings the timer
    // logs an error and returns normally (test/e2e/invalidSettings.test.ts), which Functions counts as a success.
    expect(readInfra("app/alerts.bicep")).toContain('events | where event == "sweep.finished" and outcome == "succeeded" and TimeGenerated > ago(26h) | summarize runs = count() | where runs == 0');
  },
);

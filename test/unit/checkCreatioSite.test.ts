import { checkCreatioSite } from "../../src/activities/checkCreatioSite";
import { NOT_RETRIED } from "../../src/domain/failure";
import { FakeSecretStore, deps } from "./fakes";
import { recordingGraph } from "./graphRecorder";

/** The preflight's address rule, before any request leaves: names are resolved, and where they point decides. */
describe("checkCreatioSite refuses where a Creatio name points before calling it", () => {
  const input = { host: "creatio.example.com", creatioCredentialSecretName: "creatio-api", mailServerId: "4bde7ec8-061f-46a3-ab24-49f5ec9cce8b" };
  const run = (addresses: string[] | Error, allowLoopback = false) => {
    const store = new FakeSecretStore();
    store.seed("creatio-api", JSON.stringify({ username: "u", password: "p" }), { tags: { creatioSite: input.host } });
    let creatioCalls = 0;
    const { graph } = recordingGraph(() => ({ status: 500 }));
    const lookup = async () => {
      if (addresses instanceof Error) throw addresses;
      return addresses.map((address) => ({ address, family: address.includes(":") ? 6 : 4 }));
    };
    const promise = checkCreatioSite(
      input,
      deps(graph, store, {
        creatioAllowLoopback: allowLoopback,
        lookup,
        creatio: (() => {
          creatioCalls += 1;
          throw new Error("Creatio reached");
        }) as never,
      }),
    );
    return { promise, calls: () => creatioCalls };
  };

  it.each([
    [["169.254.169.254"], /metadata/],
    [["10.0.0.5", "fe80::1"], /link-local/],
    [["::ffff:169.254.169.254"], /metadata/],
    [["127.0.0.1"], /loopback/],
  ])("%j: final, nothing reached", async (addresses, reason) => {
    const { promise, calls } = run(addresses);
    const error = (await promise.catch((e: unknown) => e)) as Error;
    expect(error.message).toMatch(reason);
    expect(error.message).toContain(NOT_RETRIED);
    expect(error.message).toMatch(/Nothing was created/);
    expect(calls()).toBe(0);
  });

  it("a private address (an on-premises Creatio through VNet integration) and, with the setting, loopback go on to Creatio", async () => {
    for (const [addresses, allow] of [[["10.1.2.3"], false], [["127.0.0.1"], true]] as const) {
      const { promise, calls } = run([...addresses], allow);
      await expect(promise).rejects.toThrow("Creatio reached");
      expect(calls()).toBe(1);
    }
  });

  it("a name that does not exist is final; a resolver that timed out is retried", async () => {
    const notFound = run(Object.assign(new Error("getaddrinfo ENOTFOUND"), { code: "ENOTFOUND" }));
    expect(((await notFound.promise.catch((e: unknown) => e)) as Error).message).toMatch(new RegExp(`cannot be resolved \\(ENOTFOUND\\).*\\${NOT_RETRIED}`));
    const timedOut = run(Object.assign(new Error("getaddrinfo EAI_AGAIN"), { code: "EAI_AGAIN" }));
    const error = (await timedOut.promise.catch((e: unknown) => e)) as Error;
    expect(error.message).toMatch(/EAI_AGAIN/);
    expect(error.message).not.toContain(NOT_RETRIED);
  });
});

describe("checkCreatioSite and the app Creatio's mail server is linked to", () => {
  const input = { host: "creatio.example.com", creatioCredentialSecretName: "creatio-api", mailServerId: "4bde7ec8-061f-46a3-ab24-49f5ec9cce8b" };
  const run = (linkedClientId: string, registeredAppId: string | undefined, takeOver = false) => {
    const store = new FakeSecretStore();
    store.seed("creatio-api", JSON.stringify({ username: "u", password: "p" }), { tags: { creatioSite: input.host } });
    const { graph, calls } = recordingGraph((call) =>
      call.path.startsWith("/applications(uniqueName='creatio-o365-creatio--example--com')") && registeredAppId
        ? { status: 200, body: { appId: registeredAppId } }
        : { status: 404, body: { error: { code: "Request_ResourceNotFound", message: "not found" } } },
    );
    const creatio = {
      odataRoot: async () => "/0/odata",
      canExecuteOperation: async () => true,
      mailServerLink: async () => ({ mailServer: { Id: input.mailServerId, Name: "Office 365", OAuthApplicationId: "row" }, application: { Id: "row", ClientId: linkedClientId } }),
    };
    const promise = checkCreatioSite({ ...input, takeOver }, deps(graph, store, { lookup: async () => [{ address: "203.0.113.7", family: 4 }], creatio: (() => creatio) as never }));
    return { promise, calls };
  };

  it("this site's own app (its Key Vault secret deleted by hand, the app still registered) is no conflict", async () => {
    const { promise, calls } = run("app-of-this-site", "app-of-this-site");
    await expect(promise).resolves.toMatchObject({ linkedClientId: "app-of-this-site", knownAppId: "app-of-this-site", takingOver: false, passwordMailboxes: null });
    expect(calls.map((c) => c.path)).toEqual(["/applications(uniqueName='creatio-o365-creatio--example--com')?$select=appId"]);
  });

  it("another app is a final conflict naming its client id, unless the request says takeOver", async () => {
    const refused = (await run("someone-else", "app-of-this-site").promise.catch((e: unknown) => e)) as Error;
    expect(refused.message).toMatch(/already linked to the application with client id someone-else, which this app did not register.*"takeOver": true/);
    expect(refused.message).toContain(NOT_RETRIED);
    await expect(run("someone-else", undefined, true).promise).resolves.toMatchObject({ takingOver: true });
  });
});

import {
  KEY_VAULT_NAME_PATTERN,
  applicationUniqueNameFor,
  decodeHostName,
  encodeHostForName,
  hostFromSecretName,
  onboardingInstanceIdFor,
  parseCreatioUrl,
  parseSiteHost,
  redirectUriFor,
  secretNameFor,
  defaultIdentityServerUrlFor,
} from "../../src/domain/site";

describe("parseCreatioUrl", () => {
  it.each([
    ["https://acme.creatio.com", "acme.creatio.com"],
    ["https://ACME.Creatio.com/", "acme.creatio.com"],
    ["https://acme.creatio.com/0", "acme.creatio.com"],
    ["https://acme.creatio.com/0/", "acme.creatio.com"],
    ["https://acme.creatio.com:443", "acme.creatio.com"],
    ["https://localhost:8443", "localhost:8443"],
  ])("accepts %s as site %s", (url, host) => {
    const parsed = parseCreatioUrl(url);
    expect(parsed).toEqual({ ok: true, site: { host, origin: `https://${host}` } });
  });

  it.each([
    ["http://acme.creatio.com", /https/],
    ["acme.creatio.com", /valid URL/],
    ["https://acme.creatio.com/0/Shell", /path/],
    ["https://acme.creatio.com/api", /path/],
    ["https://acme.creatio.com/?x=1", /query/],
    ["https://user:pw@acme.creatio.com", /user info/],
    ["https://acme_creatio.com", /invalid host/],
    ["https://-acme.creatio.com", /invalid host/],
    ["https://[::1]:8443", /loopback/],
    ["https://[2001:db8::1]", /IPv6 address/],
  ])("rejects %s", (url, problem) => {
    const parsed = parseCreatioUrl(url);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.problem).toMatch(problem);
  });

  it("rejects a host too long for its Key Vault secret name", () => {
    const long = Array.from({ length: 4 }, () => "a".repeat(30)).join(".") + ".com";
    expect(parseSiteHost(long).ok).toBe(false);
  });
});

describe("names derived from the host", () => {
  it("are deterministic and within Key Vault's name rules", () => {
    for (const host of ["acme.creatio.com", "my-site.creatio.com", "localhost:8443", "a.b-c.d"]) {
      const name = secretNameFor(host);
      expect(name).toMatch(KEY_VAULT_NAME_PATTERN);
      expect(secretNameFor(host)).toBe(name);
      expect(hostFromSecretName(name)).toBe(host);
    }
    expect(secretNameFor("acme.creatio.com")).toBe("creatio-o365-acme--creatio--com");
    expect(applicationUniqueNameFor("acme.creatio.com")).toBe("creatio-o365-acme--creatio--com");
  });

  it("never collide, even for hosts that differ only in punctuation", () => {
    const hosts = ["a-b.c", "a.b-c", "a--b.c", "a.-b.c", "ab.c", "a-0b.c", "a.0b.c", "a:1", "a-1", "a1"];
    const names = hosts.map(secretNameFor);
    expect(new Set(names).size).toBe(hosts.length);
    for (const host of hosts) expect(decodeHostName(encodeHostForName(host))).toBe(host);
  });

  it("does not claim foreign secret names", () => {
    expect(hostFromSecretName("some-other-secret")).toBeUndefined();
    expect(hostFromSecretName("creatio-o365-bad-x")).toBeUndefined();
  });

  it("gives the instance id, redirect URI and identity server", () => {
    expect(onboardingInstanceIdFor("acme.creatio.com")).toBe("onboard-acme.creatio.com");
    expect(redirectUriFor("acme.creatio.com")).toBe("https://acme.creatio.com/0/rest/Office365OAuthAuthenticator/ProcessAuthenticationCode");
    expect(defaultIdentityServerUrlFor("acme.creatio.com")).toBe("https://acme-is.creatio.com");
    expect(defaultIdentityServerUrlFor("crm.example.org")).toBeUndefined();
  });
});

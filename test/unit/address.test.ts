import { classifyAddress, creatioAddressProblem, ipLiteralOf, resolveCreatioHostProblem, type Lookup } from "../../src/domain/address";

describe("classifyAddress", () => {
  it.each([
    // loopback
    ["127.0.0.1", "loopback"],
    ["127.255.0.9", "loopback"],
    ["::1", "loopback"],
    ["::ffff:127.0.0.1", "loopback"],
    ["0x7f.1", "loopback"],
    ["127.1", "loopback"],
    // link-local
    ["169.254.1.1", "link-local"],
    ["fe80::1", "link-local"],
    ["[fe80::abcd]", "link-local"],
    ["fe80::1%eth0", "link-local"],
    ["febf::1", "link-local"],
    ["::ffff:169.254.1.1", "link-local"],
    // metadata, in every spelling the URL parser accepts
    ["169.254.169.254", "metadata"],
    ["2852039166", "metadata"],
    ["0xa9fea9fe", "metadata"],
    ["0251.0376.0251.0376", "metadata"],
    ["::ffff:169.254.169.254", "metadata"],
    ["::ffff:a9fe:a9fe", "metadata"],
    ["64:ff9b::169.254.169.254", "metadata"],
    ["fd00:ec2::254", "metadata"],
    ["FD00:EC2:0:0:0:0:0:254", "metadata"],
    ["fd20:ce::254", "metadata"],
    ["169.254.170.2", "metadata"],
    ["100.100.100.200", "metadata"],
    ["168.63.129.16", "metadata"],
    // unspecified
    ["0.0.0.0", "unspecified"],
    ["0", "unspecified"],
    ["0.1.2.3", "unspecified"],
    ["::", "unspecified"],
    ["::ffff:0.0.0.0", "unspecified"],
    // private
    ["10.0.0.1", "private"],
    ["172.16.0.1", "private"],
    ["172.31.255.255", "private"],
    ["192.168.10.20", "private"],
    ["100.64.0.1", "private"],
    ["fc00::1", "private"],
    ["fd12:3456::1", "private"],
    // reserved
    ["224.0.0.1", "reserved"],
    ["255.255.255.255", "reserved"],
    ["ff02::1", "reserved"],
    // public
    ["8.8.8.8", "public"],
    ["172.32.0.1", "public"],
    ["169.255.0.1", "public"],
    ["2001:db8::1", "public"],
    ["fec0::1", "public"],
  ])("%s is %s", (ip, kind) => {
    expect(classifyAddress(ip)).toBe(kind);
  });

  it("gives undefined for names and malformed literals", () => {
    for (const text of ["acme.creatio.com", "localhost", "1:2:3:4:5:6:7:8:9", "fe80:::1", "", "256.1.1.1.1"]) expect(classifyAddress(text)).toBeUndefined();
  });

  it("normalises the literal as the URL parser does", () => {
    expect(ipLiteralOf("2852039166")).toBe("169.254.169.254");
    expect(ipLiteralOf("[::FFFF:169.254.169.254]")).toBe("::ffff:a9fe:a9fe");
    expect(ipLiteralOf("fd00:ec2:0:0:0:0:0:254")).toBe("fd00:ec2::254");
    expect(new URL("https://2852039166/").hostname).toBe("169.254.169.254");
  });
});

describe("creatioAddressProblem", () => {
  it.each(["169.254.169.254", "2852039166", "::ffff:169.254.169.254", "fe80::1", "169.254.3.4", "0.0.0.0", "::", "100.100.100.200", "fd00:ec2::254", "168.63.129.16", "224.0.0.1"])(
    "always refuses %s, naming it, even when loopback is allowed",
    (ip) => {
      for (const allowLoopback of [false, true]) {
        const problem = creatioAddressProblem(ip, allowLoopback);
        expect(problem).toEqual(expect.any(String));
        expect(problem).toContain(ip);
        expect(problem).toMatch(/DNS name/);
      }
    },
  );

  it("names the metadata service, also behind an IPv4-mapped IPv6 address", () => {
    expect(creatioAddressProblem("::ffff:169.254.169.254", true)).toMatch(/instance metadata service/);
    expect(creatioAddressProblem("100.100.100.200", true)).toMatch(/Alibaba/);
    expect(creatioAddressProblem("fe80::1", true)).toMatch(/link-local/);
  });

  it.each(["127.0.0.1", "::1", "::ffff:127.0.0.1"])("refuses loopback %s unless CREATIO_ALLOW_LOOPBACK", (ip) => {
    expect(creatioAddressProblem(ip, false)).toMatch(/loopback.*CREATIO_ALLOW_LOOPBACK=true/);
    expect(creatioAddressProblem(ip, true)).toBeUndefined();
  });

  it.each(["10.0.0.1", "172.16.5.5", "192.168.1.10", "fd12::1", "8.8.8.8", "20.50.2.1"])("allows private and public %s", (ip) => {
    expect(creatioAddressProblem(ip, false)).toBeUndefined();
  });

  it("says so when the text is no IP address", () => {
    expect(creatioAddressProblem("acme.creatio.com", false)).toMatch(/not an IP address/);
  });
});

describe("resolveCreatioHostProblem", () => {
  const fakeLookup = (answers: Record<string, string[]>): Lookup => async (hostname) => {
    const list = answers[hostname];
    if (!list) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: "ENOTFOUND" });
    return list.map((address) => ({ address, family: address.includes(":") ? 6 : 4 }));
  };

  it("passes a name whose every address is allowed", async () => {
    const lookup = fakeLookup({ "acme.creatio.com": ["20.1.2.3", "2603:1020::1"], "crm.corp.local": ["10.1.2.3"] });
    await expect(resolveCreatioHostProblem("acme.creatio.com", false, lookup)).resolves.toBeUndefined();
    await expect(resolveCreatioHostProblem("crm.corp.local", false, lookup)).resolves.toBeUndefined();
  });

  it("refuses a name when any of its addresses is refused, naming host and address", async () => {
    const lookup = fakeLookup({ "evil.example.com": ["20.1.2.3", "::ffff:169.254.169.254"] });
    const problem = await resolveCreatioHostProblem("evil.example.com", true, lookup);
    expect(problem).toMatch(/evil\.example\.com/);
    expect(problem).toMatch(/169\.254\.169\.254/);
  });

  it("applies the loopback setting to resolved addresses", async () => {
    const lookup = fakeLookup({ localhost: ["127.0.0.1", "::1"] });
    await expect(resolveCreatioHostProblem("localhost", false, lookup)).resolves.toMatch(/loopback/);
    await expect(resolveCreatioHostProblem("localhost", true, lookup)).resolves.toBeUndefined();
  });

  it("says a name cannot be resolved", async () => {
    await expect(resolveCreatioHostProblem("nowhere.example", false, fakeLookup({}))).resolves.toMatch(/nowhere\.example cannot be resolved \(ENOTFOUND\)/);
    await expect(resolveCreatioHostProblem("empty.example", false, fakeLookup({ "empty.example": [] }))).resolves.toMatch(/cannot be resolved/);
  });

  it("checks an IP literal without resolving it", async () => {
    const lookup: Lookup = async () => {
      throw new Error("must not be called");
    };
    await expect(resolveCreatioHostProblem("169.254.169.254", true, lookup)).resolves.toMatch(/metadata/);
    await expect(resolveCreatioHostProblem("10.0.0.1", false, lookup)).resolves.toBeUndefined();
  });
});

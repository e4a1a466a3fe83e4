import { promises as dnsPromises, type LookupAddress } from "node:dns";
import { isIP } from "node:net";

/**
 * Which network addresses the app may send a Creatio credential to (docs/architecture.md,
 * "External services" > "Creatio"). The app logs in to the Creatio site an API caller names, with
 * a password from Key Vault, from inside Azure: a site URL that points at the platform itself (the
 * instance metadata service, the Azure host's WireServer, a link-local address) would make the app
 * a proxy into its own infrastructure (server-side request forgery). Private ranges stay allowed:
 * an on-premises Creatio reached through VNet integration is legitimate.
 *
 * Pure but for resolveCreatioHostProblem, which resolves a name (the preflight step calls it).
 */

export type AddressClass = "loopback" | "link-local" | "metadata" | "unspecified" | "reserved" | "private" | "public";

/**
 * Well-known cloud metadata and platform endpoints. Some sit inside link-local (refused anyway),
 * some do not (100.100.100.200 is in the shared 100.64.0.0/10 range, 168.63.129.16 is public).
 */
const METADATA_ADDRESSES: ReadonlyMap<string, string> = new Map([
  // AWS, Azure IMDS, Google Cloud, Oracle Cloud, OpenStack, DigitalOcean...
  // (learn.microsoft.com/azure/virtual-machines/instance-metadata-service, docs.aws.amazon.com/AWSEC2/latest/UserGuide/instancedata-data-retrieval.html)
  ["169.254.169.254", "the cloud instance metadata service (Azure IMDS, AWS, Google Cloud, Oracle Cloud)"],
  // AWS IMDS over IPv6 (docs.aws.amazon.com/AWSEC2/latest/UserGuide/instancedata-data-retrieval.html).
  ["fd00:ec2::254", "the AWS instance metadata service (IPv6)"],
  // AWS ECS task credentials endpoint (docs.aws.amazon.com/AmazonECS/latest/developerguide/task-iam-roles.html).
  ["169.254.170.2", "the AWS ECS task credentials endpoint"],
  // Google Cloud metadata server over IPv6 (cloud.google.com/compute/docs/metadata/querying-metadata).
  ["fd20:ce::254", "the Google Cloud metadata server (IPv6)"],
  // Alibaba Cloud ECS (alibabacloud.com/help/en/ecs/user-guide/view-instance-metadata).
  ["100.100.100.200", "the Alibaba Cloud instance metadata service"],
  // Azure's virtual public IP of the host: DNS, DHCP, health probes, the VM agent's WireServer
  // (learn.microsoft.com/azure/virtual-network/what-is-ip-address-168-63-129-16).
  ["168.63.129.16", "the Azure platform's WireServer (168.63.129.16)"],
]);

type Parsed = { version: 4; bytes: number[] } | { version: 6; groups: number[] };

/**
 * An IP literal in canonical text (`169.254.169.254`, `fe80::1`), or undefined when the text is no
 * IP literal. Accepts the forms the WHATWG URL parser turns into an IPv4 address (`2852039166`,
 * `0xa9fea9fe`, `0251.0376.0251.0376`, `127.1`), brackets around IPv6, and a zone id (`fe80::1%eth0`).
 */
export function ipLiteralOf(text: string): string | undefined {
  let candidate = text.trim();
  if (candidate.startsWith("[") && candidate.endsWith("]")) candidate = candidate.slice(1, -1);
  const zone = candidate.indexOf("%");
  if (zone > 0 && candidate.includes(":")) candidate = candidate.slice(0, zone);
  if (isIP(candidate) === 4) return candidate;
  if (isIP(candidate) === 6) return formatIpv6(parseIpv6(candidate)!);
  if (candidate.includes(":") || candidate === "") return undefined;
  // What `new URL()` makes of a host such as 2852039166 (url.spec.whatwg.org/#concept-ipv4-parser).
  try {
    const hostname = new URL(`https://${candidate}/`).hostname;
    return isIP(hostname) === 4 ? hostname : undefined;
  } catch {
    return undefined;
  }
}

function parse(ip: string): Parsed | undefined {
  const literal = ipLiteralOf(ip);
  if (literal === undefined) return undefined;
  if (isIP(literal) === 4) return { version: 4, bytes: literal.split(".").map(Number) };
  return { version: 6, groups: parseIpv6(literal)! };
}

/** Eight 16-bit groups; a dotted IPv4 tail counts as two. */
function parseIpv6(text: string): number[] | undefined {
  let head = text.toLowerCase();
  const tail: number[] = [];
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(head);
  if (dotted) {
    const b = dotted[1]!.split(".").map(Number);
    tail.push((b[0]! << 8) | b[1]!, (b[2]! << 8) | b[3]!);
    head = head.slice(0, -dotted[1]!.length);
    if (head.endsWith(":") && !head.endsWith("::")) head = head.slice(0, -1);
  }
  const toGroups = (part: string) => (part === "" ? [] : part.split(":").map((g) => parseInt(g, 16)));
  const [left, right] = head.split("::") as [string, string | undefined];
  const l = toGroups(left);
  const r = right === undefined ? [] : toGroups(right);
  const fill = 8 - tail.length - l.length - r.length;
  if (right === undefined && fill !== 0) return undefined;
  if (fill < 0) return undefined;
  const groups = [...l, ...new Array<number>(right === undefined ? 0 : fill).fill(0), ...r, ...tail];
  return groups.length === 8 && groups.every((g) => Number.isInteger(g) && g >= 0 && g <= 0xffff) ? groups : undefined;
}

/** RFC 5952 text: lower case, the longest run of two or more zero groups as `::`. */
function formatIpv6(groups: number[]): string {
  let best = { start: -1, length: 0 };
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > best.length && j - i >= 2) best = { start: i, length: j - i };
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best.start < 0) return hex.join(":");
  return `${hex.slice(0, best.start).join(":")}::${hex.slice(best.start + best.length).join(":")}`;
}

function inV4(bytes: number[], prefix: number[], bits: number): boolean {
  const value = (b: number[]) => ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return (value(bytes) & mask) >>> 0 === (value(prefix) & mask) >>> 0;
}

function classifyV4(bytes: number[]): AddressClass {
  const text = bytes.join(".");
  if (METADATA_ADDRESSES.has(text)) return "metadata";
  // 0.0.0.0/8, "this network" (RFC 6890): Linux connects 0.0.0.0 to the local host.
  if (inV4(bytes, [0, 0, 0, 0], 8)) return "unspecified";
  if (inV4(bytes, [127, 0, 0, 0], 8)) return "loopback";
  if (inV4(bytes, [169, 254, 0, 0], 16)) return "link-local";
  if (inV4(bytes, [10, 0, 0, 0], 8) || inV4(bytes, [172, 16, 0, 0], 12) || inV4(bytes, [192, 168, 0, 0], 16)) return "private";
  // Shared address space (RFC 6598, carrier-grade NAT): not routed on the internet, like RFC 1918.
  if (inV4(bytes, [100, 64, 0, 0], 10)) return "private";
  // Multicast 224.0.0.0/4, reserved 240.0.0.0/4 and broadcast: no Creatio site answers there.
  if (bytes[0]! >= 224) return "reserved";
  return "public";
}

function classifyV6(groups: number[]): AddressClass {
  const text = formatIpv6(groups);
  if (METADATA_ADDRESSES.has(text)) return "metadata";
  const zeros = (from: number, to: number) => groups.slice(from, to).every((g) => g === 0);
  const embeddedV4 = () => [groups[6]! >> 8, groups[6]! & 0xff, groups[7]! >> 8, groups[7]! & 0xff];
  if (zeros(0, 8)) return "unspecified";
  if (zeros(0, 7) && groups[7] === 1) return "loopback";
  // IPv4-mapped ::ffff:0:0/96 and IPv4-compatible ::/96 reach the IPv4 address they carry;
  // NAT64 64:ff9b::/96 (RFC 6052) reaches it through a gateway.
  if (zeros(0, 5) && (groups[5] === 0xffff || groups[5] === 0)) return classifyV4(embeddedV4());
  if (groups[0] === 0x64 && groups[1] === 0xff9b && zeros(2, 6)) return classifyV4(embeddedV4());
  if ((groups[0]! & 0xffc0) === 0xfe80) return "link-local";
  if ((groups[0]! & 0xfe00) === 0xfc00) return "private";
  if ((groups[0]! & 0xff00) === 0xff00) return "reserved";
  return "public";
}

/** The class of an IP literal (any form ipLiteralOf accepts); undefined when the text is no IP literal. */
export function classifyAddress(ip: string): AddressClass | undefined {
  const parsed = parse(ip);
  if (!parsed) return undefined;
  return parsed.version === 4 ? classifyV4(parsed.bytes) : classifyV6(parsed.groups);
}

const USE_A_NAME = "Give the Creatio site's DNS name (e.g. https://acme.creatio.com), or its private address when it is reached through VNet integration.";

/**
 * Why the app refuses to send Creatio credentials to this address, as one sentence that names the
 * address and says what to do; undefined when it is allowed. Link-local, metadata, unspecified and
 * reserved addresses are always refused; loopback only unless `allowLoopback`
 * (the CREATIO_ALLOW_LOOPBACK setting); private and public addresses are allowed.
 */
export function creatioAddressProblem(ip: string, allowLoopback: boolean): string | undefined {
  const literal = ipLiteralOf(ip);
  const kind = classifyAddress(ip);
  if (literal === undefined || kind === undefined) return `${JSON.stringify(ip)} is not an IP address.`;
  const shown = literal === ip ? literal : `${literal} (written ${ip})`;
  switch (kind) {
    case "public":
    case "private":
      return undefined;
    case "loopback":
      if (allowLoopback) return undefined;
      return `${shown} is a loopback address: the app would call itself, not a Creatio site. ${USE_A_NAME} (Local development only: set CREATIO_ALLOW_LOOPBACK=true.)`;
    case "metadata": {
      const parsed = parse(literal)!;
      const key = parsed.version === 4 ? parsed.bytes.join(".") : formatIpv6(parsed.groups);
      const what = METADATA_ADDRESSES.get(key) ?? METADATA_ADDRESSES.get(embeddedV4Text(literal) ?? "") ?? "a cloud metadata service";
      return `${shown} is ${what}, not a Creatio site; the app never sends credentials there. ${USE_A_NAME}`;
    }
    case "link-local":
      return `${shown} is a link-local address (169.254.0.0/16, fe80::/10), reserved for the local network segment and cloud platform services; the app never sends credentials there. ${USE_A_NAME}`;
    case "unspecified":
      return `${shown} is the unspecified address ("this host"), not a Creatio site. ${USE_A_NAME}`;
    case "reserved":
      return `${shown} is a multicast, broadcast or reserved address, not a Creatio site. ${USE_A_NAME}`;
  }
}

function embeddedV4Text(literal: string): string | undefined {
  const p = parse(literal);
  if (!p || p.version !== 6) return undefined;
  return [p.groups[6]! >> 8, p.groups[6]! & 0xff, p.groups[7]! >> 8, p.groups[7]! & 0xff].join(".");
}

export type Lookup = (hostname: string, options: { all: true }) => Promise<LookupAddress[]>;

/**
 * Resolves a Creatio host (without port) to all its addresses and returns the first problem
 * creatioAddressProblem finds, or a "cannot resolve" problem naming the host; undefined when every
 * address is allowed. Meant for the preflight step, right before the app connects: a DNS name can
 * point at a refused address even when the URL is a name.
 */
export async function resolveCreatioHostProblem(host: string, allowLoopback: boolean, lookup: Lookup = dnsPromises.lookup): Promise<string | undefined> {
  const literal = ipLiteralOf(host);
  if (literal !== undefined) return creatioAddressProblem(literal, allowLoopback);
  let addresses: LookupAddress[];
  try {
    addresses = await lookup(host, { all: true });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException)?.code;
    return `The Creatio host ${host} cannot be resolved${code ? ` (${code})` : ""}: check the site's DNS name, and that the Function App can reach its DNS server.`;
  }
  if (addresses.length === 0) return `The Creatio host ${host} cannot be resolved (no address): check the site's DNS name.`;
  for (const { address } of addresses) {
    const problem = creatioAddressProblem(address, allowLoopback);
    if (problem) return `The Creatio host ${host} resolves to a refused address. ${problem}`;
  }
  return undefined;
}

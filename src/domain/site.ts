import { CREATIO_EWS_PROFILE } from "./permissions";
import { creatioAddressProblem, ipLiteralOf } from "./address";
import { unsafeTextProblem } from "./text";

/**
 * A Creatio site and the names derived from it. The site key is the host of the Creatio URL as
 * the WHATWG URL parser gives it (lower case, IDN as punycode), port included when it is not 443
 * (the local emulators); docs/architecture.md, "Key Vault is the registry". Every name below is a
 * pure function of that host, so a repeated request finds the same application, Key Vault secret
 * and orchestration instance (docs/architecture.md, "Every activity is idempotent").
 */

/** `label(.label)*` with an optional port; labels per RFC 1123 (letters, digits, inner hyphens). */
const HOST_PATTERN = /^(?=.{1,253}(:|$))[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*(?::(\d{1,5}))?$/;

/** Paths accepted on a Creatio URL: the site root, or the `/0` prefix users often copy from the browser. */
const ACCEPTED_PATHS = new Set(["", "/", "/0", "/0/"]);

/** Key Vault secret names: `^[0-9a-zA-Z-]{1,127}$` (learn.microsoft.com/azure/key-vault/general/about-keys-secrets-certificates#object-identifiers). */
export const KEY_VAULT_NAME_PATTERN = /^[0-9a-zA-Z-]{1,127}$/;

/** Prefix shared by the Key Vault secret name and the application uniqueName. */
const NAME_PREFIX = "creatio-o365-";

export interface CreatioSite {
  /** Lower-cased host (with `:port` when not 443): the site key. */
  host: string;
  /** `https://<host>`: the site's origin, without path. */
  origin: string;
}

export type SiteParseResult = { ok: true; site: CreatioSite } | { ok: false; problem: string };

export interface CreatioUrlOptions {
  /** CREATIO_ALLOW_LOOPBACK: accept a loopback IP literal (the local emulators). Default false. */
  allowLoopback?: boolean;
}

/**
 * Validates a Creatio site URL (`https`, no path other than `/` or `/0`, no user info, query or
 * fragment, no control or invisible character, no IP literal the app refuses to call, see
 * src/domain/address.ts) and gives its site key, the same canonical host parseSiteHost gives for
 * a route's `{host}` (docs/architecture.md, "Key Vault is the registry").
 */
export function parseCreatioUrl(text: string, options: CreatioUrlOptions = {}): SiteParseResult {
  // Checked on the raw text: the URL parser silently drops tabs, newlines and zero-width characters.
  const unsafe = unsafeTextProblem(text);
  if (unsafe) return { ok: false, problem: unsafe };
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return { ok: false, problem: "is not a valid URL" };
  }
  if (url.protocol !== "https:") return { ok: false, problem: "must use https://" };
  if (url.username || url.password) return { ok: false, problem: "must not contain user info" };
  if (url.search || url.hash || text.includes("?") || text.includes("#"))
    return { ok: false, problem: "must not contain a query or fragment" };
  if (!ACCEPTED_PATHS.has(url.pathname)) {
    return { ok: false, problem: `must be the site's origin (e.g. https://acme.creatio.com); the path ${url.pathname} is not accepted` };
  }
  const ip = ipLiteralOf(url.hostname);
  if (ip !== undefined) {
    const problem = creatioAddressProblem(ip, options.allowLoopback ?? false);
    if (problem) return { ok: false, problem: `names a refused address: ${problem}` };
  }
  return parseSiteHost(url.host);
}

/**
 * Validates a site host as it appears in a route (`/api/tenants/{host}`) and gives the site key:
 * the WHATWG URL parser's host (lower case, IDN as punycode, IPv4 in dotted form, port 443
 * dropped), so `ACME.Creatio.com:443`, `acme.creatio.com` and an `https://` URL of the site all
 * name one site. Nothing is trimmed: a control or invisible character is refused, not dropped.
 */
export function parseSiteHost(text: string): SiteParseResult {
  const unsafe = unsafeTextProblem(text);
  if (unsafe) return { ok: false, problem: unsafe };
  // A host has no space, path, query, fragment, user info or percent-encoding; the URL parser
  // would otherwise read them as such and answer for another host.
  if (text === "" || /[\s/?#@\\%]|:$/.test(text)) return { ok: false, problem: `has an invalid host ${JSON.stringify(text)}` };
  let url: URL;
  try {
    url = new URL(`https://${text}/`);
  } catch {
    return { ok: false, problem: `has an invalid host ${JSON.stringify(text)}` };
  }
  const host = url.host;
  if (url.hostname.startsWith("[")) return { ok: false, problem: `has an IPv6 address ${JSON.stringify(text)}, which is not supported as a site host; use the site's DNS name` };
  const match = HOST_PATTERN.exec(host);
  if (!match) return { ok: false, problem: `has an invalid host ${JSON.stringify(text)}` };
  if (match[2] !== undefined && (Number(match[2]) < 1 || Number(match[2]) > 65535))
    return { ok: false, problem: `has an invalid port in ${JSON.stringify(text)}` };
  if (secretNameFor(host).length > 127) return { ok: false, problem: "has a host too long to name its Key Vault secret" };
  return { ok: true, site: { host, origin: `https://${host}` } };
}

/**
 * Encodes a host into `[0-9a-z-]` injectively, so two hosts never share a name: letters and digits
 * stay, `.` becomes `--`, `-` becomes `-0`, `:` becomes `-1`. Every `-` in the output starts a
 * two-character escape, which makes the encoding reversible (see decodeHostName).
 */
export function encodeHostForName(host: string): string {
  let out = "";
  for (const ch of host) {
    if (ch === ".") out += "--";
    else if (ch === "-") out += "-0";
    else if (ch === ":") out += "-1";
    else if ((ch >= "a" && ch <= "z") || (ch >= "0" && ch <= "9")) out += ch;
    else throw new Error(`Cannot encode character ${JSON.stringify(ch)} of host ${host}`);
  }
  return out;
}

export function decodeHostName(encoded: string): string {
  let out = "";
  for (let i = 0; i < encoded.length; i++) {
    const ch = encoded[i]!;
    if (ch !== "-") {
      out += ch;
      continue;
    }
    const code = encoded[++i];
    if (code === "-") out += ".";
    else if (code === "0") out += "-";
    else if (code === "1") out += ":";
    else throw new Error(`Not an encoded host: ${encoded}`);
  }
  return out;
}

/** The one name derived from a site: `creatio-o365-<encoded host>`. */
function siteNameFor(host: string): string {
  return NAME_PREFIX + encodeHostForName(host);
}

/** Key Vault secret holding the site's client secret. */
export function secretNameFor(host: string): string {
  return siteNameFor(host);
}

/** The host a secret name was derived from, or undefined when the name is not one of ours. */
export function hostFromSecretName(name: string): string | undefined {
  if (!name.startsWith(NAME_PREFIX)) return undefined;
  try {
    return decodeHostName(name.slice(NAME_PREFIX.length));
  } catch {
    return undefined;
  }
}

/** Application `uniqueName` (the alternate key of the upsert; docs/architecture.md, "External services" > "Microsoft Graph and Entra ID"). Same encoding as the secret name. */
export function applicationUniqueNameFor(host: string): string {
  return siteNameFor(host);
}

/** Durable instance id of the onboarding for a site; one per site, so a second POST meets the first (409). */
export function onboardingInstanceIdFor(host: string): string {
  return `onboard-${host}`;
}

/** Durable instance id of a site's rotation (the rotation issue reuses this). */
export function rotationInstanceIdFor(host: string): string {
  return `rotate-${host}`;
}

/** Durable instance id of a site's offboarding (DELETE /api/tenants/{host}). */
export function offboardingInstanceIdFor(host: string): string {
  return `offboard-${host}`;
}

/** The redirect URI Creatio's Office 365 authenticator listens on (manual procedure step 2-3), at the profile's path (src/domain/permissions.ts). */
export function redirectUriFor(host: string, profile: { redirectPath: string } = CREATIO_EWS_PROFILE): string {
  return `https://${host}${profile.redirectPath}`;
}

/** Creatio cloud convention for the Identity Service host: `https://<site>-is.creatio.com` (docs/architecture.md, "External services" > "Creatio"). */
export function defaultIdentityServerUrlFor(host: string): string | undefined {
  const m = /^([a-z0-9-]+)\.creatio\.com$/.exec(host);
  return m ? `https://${m[1]}-is.creatio.com` : undefined;
}

// JWT-shaped access tokens for the emulated Entra ID token endpoint, signed RS256 with a key kept in
// the sandbox so that every emulator (Graph, Key Vault) can check signature, expiry and audience the
// way the real resource servers do: a token for Graph is refused by Key Vault and vice versa.
import { createPrivateKey, createPublicKey, generateKeyPairSync, KeyObject, randomUUID, sign, verify } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface AccessTokenClaims {
  aud: string;
  iss: string;
  tid: string;
  appid: string;
  oid: string;
  iat: number;
  nbf: number;
  exp: number;
  roles?: string[];
  scp?: string;
  [claim: string]: unknown;
}

export interface TokenSigner {
  keyId: string;
  publicKey: KeyObject;
  issue(claims: Omit<AccessTokenClaims, "iat" | "nbf" | "exp">, lifetimeSeconds?: number): { token: string; expiresIn: number };
  /** Returns the claims when the token is well formed, signed by this signer, unexpired and for `audience`; else a reason. */
  check(token: string, audiences: string[]): { ok: true; claims: AccessTokenClaims } | { ok: false; reason: string };
}

const b64url = (data: Buffer | string) => Buffer.from(data).toString("base64url");

export function loadTokenSigner(sandboxDir: string): TokenSigner {
  const dir = join(sandboxDir, "tls");
  const keyPath = join(dir, "token-signing-key.pem");
  if (!existsSync(keyPath)) {
    mkdirSync(dir, { recursive: true });
    const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    writeFileSync(keyPath, privateKey.export({ type: "pkcs8", format: "pem" }), { mode: 0o600 });
  }
  const privateKey = createPrivateKey(readFileSync(keyPath));
  const publicKey = createPublicKey(privateKey);
  const keyId = "sandbox-" + Buffer.from(publicKey.export({ type: "spki", format: "der" })).subarray(-12).toString("hex");

  return {
    keyId,
    publicKey,
    issue(claims, lifetimeSeconds = 3600) {
      const now = Math.floor(Date.now() / 1000);
      const header = { alg: "RS256", typ: "JWT", kid: keyId };
      const body = { ...claims, iat: now, nbf: now - 5, exp: now + lifetimeSeconds, uti: randomUUID() };
      const signingInput = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(body))}`;
      const signature = sign("RSA-SHA256", Buffer.from(signingInput), privateKey);
      return { token: `${signingInput}.${b64url(signature)}`, expiresIn: lifetimeSeconds };
    },
    check(token, audiences) {
      const parts = token.split(".");
      if (parts.length !== 3) return { ok: false, reason: "The token is not a JWT." };
      const valid = verify("RSA-SHA256", Buffer.from(`${parts[0]}.${parts[1]}`), publicKey, Buffer.from(parts[2], "base64url"));
      if (!valid) return { ok: false, reason: "The token signature is invalid." };
      let claims: AccessTokenClaims;
      try {
        claims = JSON.parse(Buffer.from(parts[1], "base64url").toString("utf8"));
      } catch {
        return { ok: false, reason: "The token payload is not JSON." };
      }
      if (claims.exp * 1000 < Date.now()) return { ok: false, reason: "The token is expired." };
      if (!audiences.includes(claims.aud)) return { ok: false, reason: `The token audience '${claims.aud}' is not accepted here.` };
      return { ok: true, claims };
    },
  };
}

/** The bearer token of a request's Authorization header, if any. */
export function bearerToken(authorization: string | undefined): string | undefined {
  const match = /^Bearer\s+(.+)$/i.exec(authorization ?? "");
  return match?.[1].trim();
}

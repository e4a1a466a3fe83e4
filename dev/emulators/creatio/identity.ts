// Creatio Identity Service: the OAuth 2.0 token endpoint (`/connect/token`, client credentials) on a
// host of its own, as a real site has it (cloud convention `https://<site>-is.creatio.com`, or the
// URL an administrator types as identityServerUrl), never on the Creatio origin. Sources: Creatio
// Academy "Authorize external requests using OAuth 2.0" (Identity Service `/connect/token`,
// client_credentials; each client acts as a system user) and IdentityServer's token endpoint
// (form body or HTTP Basic client authentication; `invalid_client`, `unsupported_grant_type`).
import type { EmulatorContext } from "../context";
import { EmulatorServer } from "../server";
import { SEED_CLIENTS, type IdentityClient } from "./auth";

/** Audience of the emulated Identity Service's access tokens: nothing else accepts them, and they are accepted nowhere else. */
export const CREATIO_API_AUDIENCE = "creatio-sandbox-api";
const IDENTITY_TOKEN_LIFETIME_SECONDS = 3600;

export interface CreatioIdentityOptions {
  clients?: IdentityClient[];
}

export function createCreatioIdentityService(ctx: EmulatorContext, options: CreatioIdentityOptions = {}): EmulatorServer {
  const clients = options.clients ?? SEED_CLIENTS;
  const server: EmulatorServer = new EmulatorServer({
    name: "creatio-identity",
    tls: ctx.tls,
    faults: ctx.faults,
    state: () => ({ clients: clients.map((c) => ({ clientId: c.clientId, userName: c.userName })) }),
    reset: () => undefined,
    errorBody: (_status, code, message) => ({ error: code, error_description: message }),
  });
  const issuer = () => `https://localhost:${server.port}`;

  server.route("POST", /^\/connect\/token$/i, (req) => {
    const form = new URLSearchParams(req.rawBody);
    let clientId = form.get("client_id") ?? undefined;
    let clientSecret = form.get("client_secret") ?? undefined;
    const basic = /^Basic\s+(.+)$/i.exec(req.headers.authorization ?? "");
    if (basic) {
      const [id, secret] = Buffer.from(basic[1], "base64").toString("utf8").split(":");
      clientId = decodeURIComponent(id ?? "");
      clientSecret = decodeURIComponent(secret ?? "");
    }
    if (form.get("grant_type") !== "client_credentials") return { status: 400, body: { error: "unsupported_grant_type" } };
    const client = clients.find((c) => c.clientId === clientId);
    if (!client || client.clientSecret !== clientSecret) return { status: 400, body: { error: "invalid_client" } };
    const { token, expiresIn } = ctx.signer.issue(
      { aud: CREATIO_API_AUDIENCE, iss: issuer(), tid: "creatio", appid: client.clientId, oid: client.clientId, client_id: client.clientId },
      IDENTITY_TOKEN_LIFETIME_SECONDS,
    );
    return { status: 200, body: { access_token: token, expires_in: expiresIn, token_type: "Bearer", scope: "ApplicationAccess" } };
  });
  return server;
}

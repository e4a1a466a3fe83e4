// A private certificate authority for the local emulators. The real SDKs (Key Vault, MSAL, Graph)
// insist on HTTPS, so each emulator serves TLS with a leaf certificate signed by this CA, and every
// process that calls them trusts it through NODE_EXTRA_CA_CERTS, set before the process starts
// (Node reads it once at start-up; docs/architecture.md, "Local stack").
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import forge from "node-forge";

export interface SandboxTls {
  /** Path to the CA certificate (PEM): the value for NODE_EXTRA_CA_CERTS. */
  caCertPath: string;
  caCert: string;
  /** Leaf certificate and key for localhost, 127.0.0.1 and ::1, signed by the CA. */
  serverCert: string;
  serverKey: string;
}

const FILES = { caCert: "ca.pem", caKey: "ca-key.pem", serverCert: "server.pem", serverKey: "server-key.pem" };

/** Creates the CA and server certificate in `<sandboxDir>/tls` on first use, then reuses them. */
export function ensureSandboxTls(sandboxDir: string): SandboxTls {
  const dir = join(sandboxDir, "tls");
  const path = (name: keyof typeof FILES) => join(dir, FILES[name]);
  const complete = () => Object.keys(FILES).every((name) => existsSync(path(name as keyof typeof FILES)));
  if (!complete()) {
    mkdirSync(dir, { recursive: true });
    // Parallel test processes may arrive here together: one creates under a lock file, the others
    // wait for it, so the CA and the server certificate always belong together.
    const lock = join(dir, ".creating");
    let lockFd: number | undefined;
    try {
      lockFd = openSync(lock, "wx");
    } catch {
      const deadline = Date.now() + 30_000;
      while (existsSync(lock) && Date.now() < deadline) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
    }
    if (lockFd !== undefined) {
      try {
        if (!complete()) {
          const created = createCaAndServerCertificate();
          for (const name of Object.keys(FILES) as (keyof typeof FILES)[]) writeFileSync(path(name), created[name], { mode: 0o600 });
        }
      } finally {
        closeSync(lockFd);
        unlinkSync(lock);
      }
    }
  }
  return {
    caCertPath: path("caCert"),
    caCert: readFileSync(path("caCert"), "utf8"),
    serverCert: readFileSync(path("serverCert"), "utf8"),
    serverKey: readFileSync(path("serverKey"), "utf8"),
  };
}

function rsaKeyPair(): { privateKey: forge.pki.rsa.PrivateKey; publicKey: forge.pki.rsa.PublicKey; pem: string } {
  // Node's native key generation: node-forge's pure-JS RSA takes seconds on a small machine.
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const pem = privateKey.export({ type: "pkcs1", format: "pem" }).toString();
  const forgeKey = forge.pki.privateKeyFromPem(pem);
  return { privateKey: forgeKey, publicKey: forge.pki.setRsaPublicKey(forgeKey.n, forgeKey.e), pem };
}

function createCaAndServerCertificate(): Record<keyof typeof FILES, string> {
  const now = new Date();
  const validity = (cert: forge.pki.Certificate, years: number) => {
    cert.validity.notBefore = new Date(now.getTime() - 24 * 3600 * 1000);
    cert.validity.notAfter = new Date(now.getTime() + years * 365 * 24 * 3600 * 1000);
  };
  const serial = () => "01" + randomBytes(15).toString("hex");

  const caKeys = rsaKeyPair();
  const ca = forge.pki.createCertificate();
  ca.publicKey = caKeys.publicKey;
  ca.serialNumber = serial();
  validity(ca, 10);
  const caSubject = [{ name: "commonName", value: "creatio-o365-oauth sandbox CA" }];
  ca.setSubject(caSubject);
  ca.setIssuer(caSubject);
  ca.setExtensions([
    { name: "basicConstraints", cA: true, critical: true },
    { name: "keyUsage", keyCertSign: true, cRLSign: true, critical: true },
    { name: "subjectKeyIdentifier" },
  ]);
  ca.sign(caKeys.privateKey, forge.md.sha256.create());

  const serverKeys = rsaKeyPair();
  const server = forge.pki.createCertificate();
  server.publicKey = serverKeys.publicKey;
  server.serialNumber = serial();
  validity(server, 2);
  server.setSubject([{ name: "commonName", value: "localhost" }]);
  server.setIssuer(caSubject);
  server.setExtensions([
    { name: "basicConstraints", cA: false },
    { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
    { name: "extKeyUsage", serverAuth: true },
    {
      name: "subjectAltName",
      altNames: [
        { type: 2, value: "localhost" },
        { type: 7, ip: "127.0.0.1" },
        { type: 7, ip: "::1" },
      ],
    },
  ]);
  server.sign(caKeys.privateKey, forge.md.sha256.create());

  return {
    caCert: forge.pki.certificateToPem(ca),
    caKey: caKeys.pem,
    serverCert: forge.pki.certificateToPem(server),
    serverKey: serverKeys.pem,
  };
}

/**
 * The file for NODE_EXTRA_CA_CERTS: the sandbox CA, plus whatever file the environment already
 * names there (a corporate proxy's CA, or a distribution bundle), since the variable takes one file.
 */
export function extraCaBundle(sandboxDir: string, inherited = process.env.NODE_EXTRA_CA_CERTS): string {
  const tls = ensureSandboxTls(sandboxDir);
  if (!inherited || inherited === tls.caCertPath || !existsSync(inherited)) return tls.caCertPath;
  const bundlePath = join(sandboxDir, "tls", "extra-ca-bundle.pem");
  if (inherited === bundlePath) return bundlePath;
  const bundle = `${readFileSync(inherited, "utf8").trimEnd()}\n${tls.caCert}`;
  // Rewritten only when it changes: parallel test processes read it while others start.
  if (!existsSync(bundlePath) || readFileSync(bundlePath, "utf8") !== bundle) {
    const temporary = `${bundlePath}.${process.pid}`;
    writeFileSync(temporary, bundle);
    renameSync(temporary, bundlePath);
  }
  return bundlePath;
}

/**
 * Starts the Azurite emulator (blob, queue, table) from node_modules as a child process and
 * waits until its ports answer. Used by `npm start`, the host tests and the e2e tests.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync } from "node:fs";
import { connect } from "node:net";
import path from "node:path";

export interface AzuriteOptions {
  /** Directory for Azurite's data (created if missing). */
  location: string;
  blobPort?: number;
  queuePort?: number;
  tablePort?: number;
  /** Host to bind; default 127.0.0.1. */
  host?: string;
  /** Milliseconds to wait for the ports; default 20000. */
  timeoutMs?: number;
}

export interface AzuriteHandle {
  /** Explicit connection string with the ports in use (devstoreaccount1, well-known key). */
  connectionString: string;
  blobPort: number;
  queuePort: number;
  tablePort: number;
  process: ChildProcess;
  stop(): Promise<void>;
}

// The well-known development storage account key, published by Microsoft
// (learn.microsoft.com/azure/storage/common/storage-use-azurite#http-connection-strings).
export const DEVSTORE_ACCOUNT = "devstoreaccount1";
export const DEVSTORE_KEY =
  "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

export function azuriteConnectionString(host: string, blobPort: number, queuePort: number, tablePort: number): string {
  return (
    `DefaultEndpointsProtocol=http;AccountName=${DEVSTORE_ACCOUNT};AccountKey=${DEVSTORE_KEY};` +
    `BlobEndpoint=http://${host}:${blobPort}/${DEVSTORE_ACCOUNT};` +
    `QueueEndpoint=http://${host}:${queuePort}/${DEVSTORE_ACCOUNT};` +
    `TableEndpoint=http://${host}:${tablePort}/${DEVSTORE_ACCOUNT};`
  );
}

function portAnswers(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host, port });
    sock.once("connect", () => {
      sock.destroy();
      resolve(true);
    });
    sock.once("error", () => {
      sock.destroy();
      resolve(false);
    });
  });
}

export async function startAzurite(opts: AzuriteOptions): Promise<AzuriteHandle> {
  const host = opts.host ?? "127.0.0.1";
  const blobPort = opts.blobPort ?? 10000;
  const queuePort = opts.queuePort ?? 10001;
  const tablePort = opts.tablePort ?? 10002;
  mkdirSync(opts.location, { recursive: true });
  const bin = require.resolve("azurite/dist/src/azurite.js");
  const child = spawn(
    process.execPath,
    [
      bin,
      "--silent",
      "--disableTelemetry",
      "--skipApiVersionCheck",
      "--loose",
      "--location",
      opts.location,
      "--blobHost",
      host,
      "--blobPort",
      String(blobPort),
      "--queueHost",
      host,
      "--queuePort",
      String(queuePort),
      "--tableHost",
      host,
      "--tablePort",
      String(tablePort),
    ],
    { stdio: ["ignore", "pipe", "pipe"], cwd: path.resolve(opts.location) },
  );
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  child.stdout?.resume();
  let exited = false;
  const exitPromise = new Promise<void>((resolve) => child.once("exit", () => ((exited = true), resolve())));

  const deadline = Date.now() + (opts.timeoutMs ?? 20000);
  for (;;) {
    if (exited) throw new Error(`azurite exited before it was ready: ${stderr.trim()}`);
    const ok = await Promise.all([blobPort, queuePort, tablePort].map((p) => portAnswers(host, p)));
    if (ok.every(Boolean)) break;
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`azurite did not open ports ${blobPort}/${queuePort}/${tablePort} in time: ${stderr.trim()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }

  return {
    connectionString: azuriteConnectionString(host, blobPort, queuePort, tablePort),
    blobPort,
    queuePort,
    tablePort,
    process: child,
    async stop() {
      if (exited) return;
      child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), 3000);
      await exitPromise;
      clearTimeout(t);
    },
  };
}

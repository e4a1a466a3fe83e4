/**
 * The real process environment and error helpers that work across realms. Under jest, test code
 * runs in a vm context with its own `process.env` copy and its own `Error`; the app is loaded with
 * Node's own require (functionsCore.loadApp), so the host must write settings to the real env and
 * must not rely on `instanceof Error` for errors the app throws.
 */
import Module from "node:module";

const realProcess = Module.createRequire(__filename)("node:process") as NodeJS.Process;

export const hostEnv: NodeJS.ProcessEnv = realProcess.env;

export function errMessage(e: unknown): string {
  if (e && typeof e === "object" && "message" in e) return String((e as { message: unknown }).message);
  return String(e);
}

export function errStack(e: unknown): string {
  if (e && typeof e === "object" && "stack" in e && typeof (e as { stack: unknown }).stack === "string") return (e as { stack: string }).stack;
  return errMessage(e);
}

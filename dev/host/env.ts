/** Process environment and error helpers shared by the host modules. */
import NodeModule from "node:module";

export const hostEnv: NodeJS.ProcessEnv = process.env;

/** Node's `module` builtin (Module._resolveFilename, _cache, createRequire). */
export const RealModule: typeof NodeModule = NodeModule;

// Errors thrown by app code are read by shape, not `instanceof Error`, so a realm boundary
// (vm contexts, test runners) cannot turn a message into "[object Object]".
export function errMessage(e: unknown): string {
  if (e && typeof e === "object" && "message" in e) return String((e as { message: unknown }).message);
  return String(e);
}

export function errStack(e: unknown): string {
  if (e && typeof e === "object" && "stack" in e && typeof (e as { stack: unknown }).stack === "string") return (e as { stack: string }).stack;
  return errMessage(e);
}

// Where development-time state lives: certificates, token keys, Azurite data. Git-ignored.
import { resolve } from "node:path";

export const REPO_ROOT = resolve(__dirname, "..");
export const SANDBOX_DIR = process.env.SANDBOX_DIR ? resolve(process.env.SANDBOX_DIR) : resolve(REPO_ROOT, ".sandbox");

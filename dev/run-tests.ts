// `npm test`: jest, with the sandbox CA trusted. NODE_EXTRA_CA_CERTS is read only when a Node process
// starts, so the CA is made first and jest is started as a child process with the variable set.
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { loadTokenSigner } from "./emulators/jwtSigner";
import { extraCaBundle } from "./emulators/tls";
import { REPO_ROOT, SANDBOX_DIR } from "./sandbox";

const caBundle = extraCaBundle(SANDBOX_DIR);
loadTokenSigner(SANDBOX_DIR); // made once here, so parallel test workers never race to create it
const jest = join(REPO_ROOT, "node_modules", "jest", "bin", "jest.js");
const result = spawnSync(process.execPath, [jest, ...process.argv.slice(2)], {
  cwd: REPO_ROOT,
  stdio: "inherit",
  env: { ...process.env, NODE_EXTRA_CA_CERTS: caBundle, SANDBOX_DIR },
});
process.exit(result.status ?? 1);

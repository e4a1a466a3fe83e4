/**
 * `npm run package`: the deployable Functions app, as a folder (default dist/deploy) and optionally a
 * zip (`--zip <file>`): the compiled app (dist/src, what `npm run build` makes and the tests run)
 * bundled with its production dependencies by esbuild into `index.js` (what the app needs to start)
 * and `sdk.js` (what it loads on first use, see DEFERRED_MODULES), plus `host.json` and a
 * `package.json` whose `main` is index.js. No node_modules: a cold start reads one 0.6 MiB file
 * instead of some 5,400 files (issue 12; the reason Azure's own azure-functions-pack existed,
 * github.com/Azure/azure-functions-pack).
 *
 * Left out of the bundle (`external`), each for a reason:
 * - `@azure/functions-core`: not an npm package but a module the Functions Node.js worker provides
 *   to the app at run time; @azure/functions requires it to register functions, so it must stay a
 *   plain `require` (github.com/Azure/azure-functions-nodejs-library/issues/201). The local host
 *   provides it the same way (dev/host/functionsCore.ts).
 * - `open`: only @azure/identity's interactive browser sign-in imports it, which a server never
 *   does; it finds its bundled `xdg-open` script through `import.meta.url`, which a CommonJS bundle
 *   leaves empty. Not shipped, so that sign-in would fail; DefaultAzureCredential never uses it.
 * - `supports-color`: `debug` (under axios) tries it inside a try/catch, for coloured output. It is
 *   no production dependency, so a production install lacks it and `debug` does without; bundling
 *   it would ship whatever the dev tools happened to install.
 *
 * durable-functions loads two libraries at start that the app rarely or barely needs; the bundle
 * defers or narrows them (plugin `splitDeferredModules` below), which is half of
 * durable-functions' own load time.
 *
 * azure.yaml deploys this folder as built (`dist: dist/deploy`, `remoteBuild: false`), and
 * test/infra/package.test.ts checks what is in it and that it starts in the local host.
 *
 *   tsx scripts/package.ts [--out dist/deploy] [--zip app.zip] [--no-build]
 */
import { execFileSync, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { build, type BuildOptions, type Metafile, type Plugin } from "esbuild";

const REPO_ROOT = resolve(__dirname, "..");

/** The bundle's file name in the package, and its package.json `main`. */
export const BUNDLE = "index.js";
/** The second bundle: the SDKs the app requires on first use only (src/clients/*), loaded then. */
export const SDK_BUNDLE = "sdk.js";

/** Modules both bundles require at run time instead of holding (see the header). */
export const EXTERNAL = ["@azure/functions-core", "open", "supports-color"] as const;

/**
 * What goes into sdk.js instead of index.js: the SDKs src/clients/* require on first use, axios
 * and zod's languages (below). Compiling a module costs start time even if it never runs, so what the app does
 * not need to register its functions and answer its first request lives in a file of its own,
 * read when first needed. One file, not one per SDK: they share @azure/core-* and @azure/identity,
 * which must exist once.
 */
export const DEFERRED_MODULES = [
  "@azure/identity",
  "@azure/keyvault-secrets",
  "@microsoft/microsoft-graph-client",
  "@microsoft/microsoft-graph-client/authProviders/azureTokenCredentials",
  "axios",
  "moment",
  "zod/v4/locales",
] as const;

/**
 * zod's error messages in 49 languages: zod requires them all when it loads (zod 4,
 * v4/classic/external.cjs and v4/core/index.cjs, for `z.locales`), a third of zod's size, but
 * uses only English (which it requires on its own, v4/classic/schemas.cjs) unless the app calls
 * `z.config(z.locales.xx())`, which it never does. index.js gets a module with one getter per
 * language that loads sdk.js. (sdk.js then holds its own copy of the few zod helpers the
 * languages call; they keep no state.)
 */
const ZOD_LOCALES = "zod/v4/locales";

/**
 * durable-functions requires `axios`, `validator` and `moment` when it loads (durable-functions 3.x,
 * lib/src/durableClient/DurableClient.js and getClient.js for the durable client;
 * orchestrations/DurableOrchestrationContext.js, task/LongTimerTask.js and
 * task/CallHttpWithPollingTask.js for timers):
 * - axios (with form-data, mime-db, follow-redirects: about as long to load as the rest of
 *   durable-functions) is used only through `axios_1.default`, when a client binding is first
 *   used: it gets a module whose `default` loads the real axios (from sdk.js) on first access.
 * - of validator's hundred validators it uses `isURL` only: it gets a module holding that one.
 * - moment is called only while an orchestration runs, as `moment(date)` and `moment.duration(...)`
 *   (its only uses there): it gets a function with those two entry points, which load the real
 *   moment (from sdk.js) on first call.
 * Same functions, same behaviour; only when their code loads changes.
 */
const DURABLE_SHIMS: Record<string, string> = {
  axios: `module.exports = { get default() { return require("axios").default; } };`,
  validator: `module.exports = { isURL: require("validator/lib/isURL").default };`,
  moment: `const real = () => require("moment"); function moment(...args) { return real()(...args); } moment.duration = (...args) => real().duration(...args); module.exports = moment;`,
};

/** index.js: durable-functions' shims, and every deferred module as a forward to sdk.js. */
export const splitDeferredModules: Plugin = {
  name: "split-deferred-modules",
  setup(b) {
    b.onResolve({ filter: /^(axios|validator|moment)$/ }, (args) => {
      if (!/[\\/]node_modules[\\/]durable-functions[\\/]/.test(args.importer)) return undefined;
      return { path: args.path, namespace: "durable-shim", pluginData: { resolveDir: args.resolveDir } };
    });
    b.onLoad({ filter: /.*/, namespace: "durable-shim" }, (args) => ({
      contents: DURABLE_SHIMS[args.path],
      loader: "js",
      // validator/lib/isURL resolves from where durable-functions asked for validator.
      resolveDir: (args.pluginData as { resolveDir: string }).resolveDir,
    }));
    const deferred = new RegExp(`^(${DEFERRED_MODULES.map((m) => m.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")).join("|")})$`);
    b.onResolve({ filter: deferred }, (args) => ({ path: args.path, namespace: "deferred" }));
    b.onResolve({ filter: /^\.\.\/locales\/index\.cjs$/ }, (args) =>
      /[\\/]node_modules[\\/]zod[\\/]v4[\\/](classic[\\/]external|core[\\/]index)\.cjs$/.test(args.importer) ? { path: ZOD_LOCALES, namespace: "deferred" } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: "deferred" }, (args) => {
      const forward = `require("./${SDK_BUNDLE}")[${JSON.stringify(args.path)}]`;
      if (args.path !== ZOD_LOCALES) return { contents: `module.exports = ${forward};`, loader: "js" };
      // An ES-module-shaped object (zod reads it through __importStar, which keeps such an object
      // as it is) whose every language is a getter: nothing loads until one is read.
      const languages = Object.keys(require(ZOD_LOCALES) as object).filter((k) => k !== "__esModule");
      const getters = languages.map((l) => `Object.defineProperty(exports, ${JSON.stringify(l)}, { enumerable: true, get: () => ${forward}[${JSON.stringify(l)}] });`);
      return { contents: ['Object.defineProperty(exports, "__esModule", { value: true });', ...getters].join("\n"), loader: "js" };
    });
    b.onResolve({ filter: new RegExp(`^\\./${SDK_BUNDLE.replace(".", "\\.")}$`), namespace: "deferred" }, (args) => ({ path: args.path, external: true }));
  },
};

/** Name of sdk.js's entry in esbuild's metafile (it has no file). */
export const SDK_ENTRY = "<sdk.js entry>";

/** sdk.js's entry: each deferred module behind a getter, so requiring one runs only its own code. */
export const sdkEntry = `${DEFERRED_MODULES.map((m) => `Object.defineProperty(exports, ${JSON.stringify(m)}, { enumerable: true, get: () => require(${JSON.stringify(m)}) });`).join("\n")}\n`;

/** Repository-relative directories of the production dependencies (`npm ls --omit=dev --all --parseable`). */
export function productionDependencyDirs(root: string): string[] {
  const result = spawnSync("npm", ["ls", "--omit=dev", "--all", "--parseable"], { cwd: root, encoding: "utf8", shell: process.platform === "win32" });
  // npm ls exits 1 on an extraneous or invalid package but still lists the tree; no output is fatal.
  const lines = (result.stdout ?? "").split(/\r?\n/).filter(Boolean);
  if (lines.length === 0) throw new Error(`npm ls --omit=dev printed nothing: ${result.stderr}`);
  return lines
    .map((abs) => relative(root, abs).split(sep).join("/"))
    .filter((rel) => rel.startsWith("node_modules/"))
    .sort();
}

function listFiles(root: string, dir = ""): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
    const rel = dir ? `${dir}/${entry.name}` : entry.name;
    if (entry.isDirectory()) out.push(...listFiles(root, rel));
    else if (entry.isFile()) out.push(rel);
  }
  return out;
}

export interface PackageOptions {
  root?: string;
  outDir?: string;
  build?: boolean;
}

export interface BuiltPackage {
  outDir: string;
  /** Files in the package (relative, forward slashes). */
  files: string[];
  bytes: number;
  /** esbuild's record of each bundle (index.js, sdk.js): every input file (repository-relative) and what stayed external. */
  metafiles: Metafile[];
}

/** Makes the package folder. */
export async function buildPackage(options: PackageOptions = {}): Promise<BuiltPackage> {
  const root = options.root ?? REPO_ROOT;
  const outDir = resolve(root, options.outDir ?? join("dist", "deploy"));
  if (options.build !== false) execFileSync("npm", ["run", "build", "--silent"], { cwd: root, stdio: "inherit", shell: process.platform === "win32" });
  const entry = join(root, "dist", "src", "index.js");
  if (!existsSync(entry)) throw new Error("dist/src/index.js is missing: run npm run build");

  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const common = {
    absWorkingDir: root,
    bundle: true,
    platform: "node",
    target: "node20",
    format: "cjs",
    external: [...EXTERNAL],
    minify: true,
    // Error and class names stay readable in logs and stack traces; code that reads
    // constructor.name keeps working (esbuild.github.io/api/#keep-names).
    keepNames: true,
    // Licence comments of the bundled packages, kept at the end of each file.
    legalComments: "eof",
    metafile: true,
    logLevel: "warning",
  } satisfies BuildOptions;
  const main = await build({ ...common, entryPoints: [entry], outfile: join(outDir, BUNDLE), plugins: [splitDeferredModules] });
  const sdk = await build({
    ...common,
    stdin: { contents: sdkEntry, resolveDir: root, sourcefile: SDK_ENTRY, loader: "js" },
    outfile: join(outDir, SDK_BUNDLE),
  });

  cpSync(join(root, "host.json"), join(outDir, "host.json"));
  const manifest = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as Record<string, unknown>;
  // The deployed app's package.json: the Functions worker loads `main`. No dependencies: the
  // bundle holds them, and nothing is installed in Azure (azure.yaml, remoteBuild: false).
  const deployed = {
    name: manifest.name,
    version: manifest.version,
    private: true,
    description: manifest.description,
    main: BUNDLE,
    engines: manifest.engines,
  };
  writeFileSync(join(outDir, "package.json"), JSON.stringify(deployed, null, 2) + "\n");

  const files = listFiles(outDir).sort();
  const bytes = files.reduce((n, f) => n + statSync(join(outDir, f)).size, 0);
  return { outDir, files, bytes, metafiles: [main.metafile, sdk.metafile] };
}

async function main(argv: string[]): Promise<void> {
  const arg = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const { outDir, files, bytes } = await buildPackage({ outDir: arg("--out"), build: !argv.includes("--no-build") });
  console.log(`package: ${files.length} files, ${(bytes / 1024 / 1024).toFixed(1)} MiB in ${relative(process.cwd(), outDir) || "."}`);
  const zip = arg("--zip");
  if (zip) {
    const zipPath = resolve(process.cwd(), zip);
    rmSync(zipPath, { force: true });
    mkdirSync(dirname(zipPath), { recursive: true });
    // The zip CLI keeps this script dependency-free; on Windows use Compress-Archive on the folder.
    execFileSync("zip", ["-q", "-r", "-X", zipPath, "."], { cwd: outDir, stdio: "inherit" });
    console.log(`zip: ${zipPath}`);
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}

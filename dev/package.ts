/**
 * `npm run package`: the deployable Functions app, as a folder (default dist/deploy) and optionally a
 * zip (`--zip <file>`). What goes in: every repository file that .funcignore does not exclude (so
 * dist/src, host.json, package.json, package-lock.json) plus the production dependencies, read from
 * the installed tree with `npm ls --omit=dev` so it works offline and matches package-lock.json.
 * .funcignore is applied to the dependencies too, as `func azure functionapp publish` does.
 *
 * azure.yaml deploys this folder as built (`dist: dist/deploy`, `remoteBuild: false`), and
 * test/infra/package.test.ts checks that it loads in the local host and holds no test, emulator,
 * host or dev code.
 *
 *   tsx dev/package.ts [--out dist/deploy] [--zip app.zip] [--no-build]
 */
import { execFileSync, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";

const REPO_ROOT = resolve(__dirname, "..");

interface IgnoreRule {
  negate: boolean;
  dirOnly: boolean;
  regex: RegExp;
}

/** gitignore-style rules (the subset .funcignore files use: *, **, ?, leading /, trailing /, !). */
export function parseIgnore(text: string): IgnoreRule[] {
  const rules: IgnoreRule[] = [];
  for (const raw of text.split(/\r?\n/)) {
    let line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const negate = line.startsWith("!");
    if (negate) line = line.slice(1);
    const dirOnly = line.endsWith("/");
    if (dirOnly) line = line.slice(0, -1);
    // A slash at the start or in the middle anchors the pattern to the root; otherwise it matches
    // a name at any depth (git-scm.com/docs/gitignore, PATTERN FORMAT).
    const anchored = line.includes("/");
    if (line.startsWith("/")) line = line.slice(1);
    let re = "";
    for (let i = 0; i < line.length; i++) {
      const c = line[i];
      if (c === "*" && line[i + 1] === "*") {
        re += line[i + 2] === "/" ? "(?:.*/)?" : ".*";
        i += line[i + 2] === "/" ? 2 : 1;
      } else if (c === "*") re += "[^/]*";
      else if (c === "?") re += "[^/]";
      else re += c.replace(/[.+^${}()|[\]\\]/g, "\\$&");
    }
    rules.push({ negate, dirOnly, regex: new RegExp(anchored ? `^${re}$` : `(?:^|/)${re}$`) });
  }
  return rules;
}

/** Whether a repository-relative path (forward slashes) is excluded; an excluded folder excludes everything below it. */
export function isIgnored(rules: IgnoreRule[], relPath: string, isDir: boolean): boolean {
  const parts = relPath.split("/");
  for (let i = 1; i <= parts.length; i++) {
    const prefix = parts.slice(0, i).join("/");
    const prefixIsDir = i < parts.length || isDir;
    let ignored = false;
    for (const rule of rules) {
      if (rule.dirOnly && !prefixIsDir) continue;
      if (rule.regex.test(prefix)) ignored = !rule.negate;
    }
    if (ignored) return true;
  }
  return false;
}

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

function walk(root: string, dir: string, skip: (rel: string, isDir: boolean) => boolean, out: string[]): void {
  for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
    const rel = dir ? `${dir}/${entry.name}` : entry.name;
    const isDir = entry.isDirectory();
    if (skip(rel, isDir)) continue;
    if (isDir) walk(root, rel, skip, out);
    else if (entry.isFile()) out.push(rel);
  }
}

export interface PackageOptions {
  root?: string;
  outDir?: string;
  build?: boolean;
}

/** Makes the package folder; returns its path and the files in it (relative, forward slashes). */
export function buildPackage(options: PackageOptions = {}): { outDir: string; files: string[] } {
  const root = options.root ?? REPO_ROOT;
  const outDir = resolve(root, options.outDir ?? join("dist", "deploy"));
  if (options.build !== false) execFileSync("npm", ["run", "build", "--silent"], { cwd: root, stdio: "inherit", shell: process.platform === "win32" });
  if (!existsSync(join(root, "dist", "src", "index.js"))) throw new Error("dist/src/index.js is missing: run npm run build");

  const rules = parseIgnore(existsSync(join(root, ".funcignore")) ? readFileSync(join(root, ".funcignore"), "utf8") : "");
  const outRel = relative(root, outDir).split(sep).join("/");
  const files: string[] = [];

  // The app: repository files outside node_modules that .funcignore keeps.
  walk(root, "", (rel, isDir) => rel === ".git" || rel === "node_modules" || rel === outRel || isIgnored(rules, rel, isDir), files);

  // Production dependencies. Each package's own nested node_modules is listed separately by npm ls
  // when it holds production packages, so it is skipped here and never drags in dev-only code.
  for (const dep of productionDependencyDirs(root)) {
    walk(root, dep, (rel, isDir) => (isDir && rel === `${dep}/node_modules`) || isIgnored(rules, rel, isDir), files);
  }

  rmSync(outDir, { recursive: true, force: true });
  for (const rel of files) {
    const target = join(outDir, rel);
    mkdirSync(dirname(target), { recursive: true });
    cpSync(join(root, rel), target);
  }
  return { outDir, files: files.sort() };
}

function main(argv: string[]): void {
  const arg = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const { outDir, files } = buildPackage({ outDir: arg("--out"), build: !argv.includes("--no-build") });
  const bytes = files.reduce((n, f) => n + statSync(join(outDir, f)).size, 0);
  console.log(`package: ${files.length} files, ${(bytes / 1024 / 1024).toFixed(1)} MiB in ${relative(process.cwd(), outDir) || "."}`);
  const zip = arg("--zip");
  if (zip) {
    const zipPath = resolve(process.cwd(), zip);
    rmSync(zipPath, { force: true });
    // The zip CLI keeps this script dependency-free; on Windows use Compress-Archive on the folder.
    execFileSync("zip", ["-q", "-r", "-X", zipPath, "."], { cwd: outDir, stdio: "inherit" });
    console.log(`zip: ${zipPath}`);
  }
}

if (require.main === module) main(process.argv.slice(2));

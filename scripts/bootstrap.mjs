// Runs before `npm test` and `npm run bench`, under whatever Node is on PATH (the machines ship
// Node 20). It installs the workspace when node_modules is missing or older than the lockfile.
// The install brings the npm registry's `node` package (a devDependency), whose binary npm puts
// first on PATH for every script, so the rest of the command runs on Node 24 with no system change.
import { spawnSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const installedMarker = join(root, "node_modules", ".package-lock.json");
const lockfile = join(root, "package-lock.json");

function mtime(path) {
  return existsSync(path) ? statSync(path).mtimeMs : 0;
}

const stale =
  !existsSync(installedMarker) ||
  mtime(lockfile) > mtime(installedMarker) ||
  mtime(join(root, "package.json")) > mtime(installedMarker);

if (stale) {
  // `npm install`, not `npm ci`, even in CI: it installs the lockfile's versions too, but it
  // tolerates an optional platform package the registry cannot serve (rollup's builds for other
  // systems, say), where `npm ci` refuses any lockfile that does not list every one of them.
  const args = ["install", "--no-audit", "--no-fund"];
  process.stderr.write("sluice: node_modules is missing or stale; running npm install\n");
  const result = spawnSync("npm", args, { cwd: root, stdio: "inherit" });
  if (result.status !== 0) process.exit(result.status ?? 1);
}

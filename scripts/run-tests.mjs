// Runs the whole vitest suite, then prints one plain closing line ("N passed, N failed, N skipped")
// that any CI log reader understands, and exits with vitest's own status.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";

const report = join(tmpdir(), `sluice-vitest-${process.pid}.json`);
const result = spawnSync(
  "vitest",
  ["run", "--reporter=default", "--reporter=json", `--outputFile.json=${report}`, ...process.argv.slice(2)],
  { stdio: "inherit", shell: false },
);

let status = result.status ?? 1;
if (existsSync(report)) {
  const summary = JSON.parse(readFileSync(report, "utf8"));
  rmSync(report, { force: true });
  const skipped = (summary.numPendingTests ?? 0) + (summary.numTodoTests ?? 0);
  console.log(`${summary.numPassedTests} passed, ${summary.numFailedTests} failed, ${skipped} skipped`);
  if (summary.numTotalTests === 0) {
    console.log("sluice: no test ran");
    status = 1;
  }
} else {
  console.log("sluice: vitest wrote no report");
  status = status === 0 ? 1 : status;
}
process.exit(status);

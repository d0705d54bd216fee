// Every script that runs project code starts here, so a Node older than the engines range fails
// with a sentence instead of an obscure syntax or API error further down.
const [major, minor] = process.versions.node.split(".").map(Number);
if (major < 22 || (major === 22 && minor < 12)) {
  process.stderr.write(
    `sluice: Node ${process.versions.node} is too old; Node 22.12 or newer is required.\n` +
      "Run the command through npm (npm test, npm run build): `npm install` provides Node 24 from the\n" +
      "npm registry's `node` package and npm scripts put it first on PATH.\n",
  );
  process.exit(1);
}

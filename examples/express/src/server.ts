import { runExampleHost } from "@sluice/example-host-kit";
import { createExpressHost } from "./app.js";

await runExampleHost(createExpressHost);

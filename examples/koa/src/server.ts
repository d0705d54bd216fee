import { runExampleHost } from "@sluice/example-host-kit";
import { createKoaHost } from "./app.js";

await runExampleHost(createKoaHost);

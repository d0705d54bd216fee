import { readFile } from "node:fs/promises";
import { z } from "zod";
import { parseInput } from "@sluice/core";

/**
 * An example host's config file (`SLUICE_CONFIG`): where to mount the API, whether to start the
 * bundled demo upstream, and the organization to seed. Inside `organization`, the text
 * `${DEMO_UPSTREAM}` stands for the demo upstream's base URL.
 */
export const hostConfigSchema = z.strictObject({
  $comment: z.string().optional(),
  basePath: z.string().startsWith("/").default("/api/openai/v1"),
  managementPath: z.string().startsWith("/").default("/api/ai"),
  demoUpstream: z.boolean().default(false),
  organization: z.record(z.string(), z.unknown()),
});
export type HostConfig = z.output<typeof hostConfigSchema>;

export async function loadHostConfig(path: string): Promise<HostConfig> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    throw new Error(`Cannot read the Sluice config at ${path}: ${(error as Error).message}`, { cause: error });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new Error(`The Sluice config at ${path} is not valid JSON: ${(error as Error).message}`, { cause: error });
  }
  return parseInput(hostConfigSchema, json, "host config");
}

/** How the management API describes the gateway to the tools a user connects (`connect`). */
export interface ManagementOptions {
  /**
   * The origin clients reach the host at, e.g. `https://platform.example.com`. Connect snippets
   * start with it. When absent, the management HTTP API uses the origin the request came to
   * (its Host header); set it when the host sits behind a proxy.
   */
  publicBaseUrl?: string;
  /** Where the host mounts the OpenAI-compatible API, e.g. `/api/openai/v1`. Default `/v1`. */
  openAIBasePath?: string;
}

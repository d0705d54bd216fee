export * from "./openai-compat-adapter.js";
export * from "./openai-compat-settings.js";
export type { OpenAICompatDeployment } from "./endpoint-deployment.js";

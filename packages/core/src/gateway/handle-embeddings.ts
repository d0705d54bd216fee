import type { ProviderResponse } from "../provider/provider.js";
import { countTextTokens } from "../streaming/count-tokens.js";
import { answerText } from "./answer-text.js";
import type { Caller } from "./authenticate.js";
import type { GatewayContext } from "./gateway-context.js";
import type { GatewayReply, GatewayRequest } from "./gateway-request.js";
import { reserveBudget } from "./reserve-budget.js";
import type { EmbeddingRequest } from "./request-schemas.js";
import type { ResolvedModel } from "./resolve-model.js";
import { RequestControl } from "./request-control.js";
import { attemptDeployments } from "./upstream-attempt.js";
import type { Attempt } from "./upstream-attempt.js";
import { worstCaseCost } from "./worst-case-cost.js";

/** `POST /embeddings`: input tokens only, reserved from the body's size and charged from usage. */
export async function handleEmbeddings(input: {
  context: GatewayContext;
  request: GatewayRequest;
  requestId: string;
  body: EmbeddingRequest;
  bodyBytes: number;
  caller: Caller;
  resolved: ResolvedModel;
}): Promise<GatewayReply> {
  const { context, resolved, body, requestId } = input;
  const price = context.prices?.priceFor({ providerId: resolved.record.id, model: resolved.deployments[0]!.model }) ?? null;
  const amount = worstCaseCost({ price, bodyBytes: input.bodyBytes, maxOutputTokens: 0, defaultMaxOutputTokens: 0, choices: 1 });
  const meter = await reserveBudget({ context, requestId, caller: input.caller, resolved, price, amount });
  const countInput = () => countTextTokens(typeof body.input === "string" ? body.input : JSON.stringify(body.input));

  const control = new RequestControl(input.request.signal, context.timeouts);
  try {
    const attempt: Attempt<ProviderResponse> = (deployment, signal) =>
      deployment.embeddings({ body: { ...body, model: deployment.model }, signal, requestId });
    const result = await attemptDeployments(resolved.deployments, attempt, control, context.retry).catch((error: unknown) => {
      throw control.failure(error);
    });
    meter.usage = result.usage ?? { inputTokens: await countInput(), outputTokens: 0, source: "counted" };
    return {
      kind: "json",
      status: 200,
      headers: { "content-type": "application/json" },
      body: answerText(result, resolved.modelId),
      // The answer goes out while the charge is committed.
      settled: meter.settle(countInput),
    };
  } catch (error) {
    await meter.settle(countInput);
    throw error;
  } finally {
    control.dispose();
  }
}

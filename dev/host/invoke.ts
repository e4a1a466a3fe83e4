/**
 * Invokes a registered function the way the Node worker does (azure-functions-nodejs-worker,
 * src/eventHandlers/InvocationHandler.ts): programming model → getInvocationModel(coreCtx) →
 * getArguments() → preInvocation hooks → invokeFunction(ctx, inputs, handler) → postInvocation
 * hooks → getResponse(ctx, result).
 */
import { randomUUID } from "node:crypto";
import type { FunctionRegistry, RegisteredFunction, RpcInvocationResponse, RpcTypedData, LogLevel } from "./functionsCore";
import type { HostLogger } from "./log";
import { errMessage } from "./env";

export interface InvokeRequest {
  /** Binding name → typed data (the trigger and any input bindings such as the durable client). */
  inputData: { name: string; data: RpcTypedData | undefined }[];
  triggerMetadata?: Record<string, RpcTypedData>;
  invocationId?: string;
}

export interface InvokeResult {
  response: RpcInvocationResponse;
  result: unknown;
}

export class InvocationError extends Error {
  constructor(
    message: string,
    readonly cause: unknown,
  ) {
    super(message);
  }
}

export async function invokeFunction(
  registry: FunctionRegistry,
  fn: RegisteredFunction,
  req: InvokeRequest,
  logger: HostLogger,
): Promise<InvokeResult> {
  const pm = registry.programmingModel;
  if (!pm) throw new Error("The app did not set a programming model (did it import @azure/functions?)");
  const invocationId = req.invocationId ?? randomUUID();
  const name = fn.metadata.name;
  const coreCtx = {
    invocationId,
    request: {
      invocationId,
      functionId: name,
      inputData: req.inputData,
      triggerMetadata: req.triggerMetadata ?? {},
      retryContext: undefined,
      traceContext: { traceParent: undefined, traceState: undefined, attributes: {} },
    },
    metadata: { name, bindings: fn.metadata.bindings, retryOptions: fn.metadata.retryOptions },
    state: "invocation" as string,
    log(level: LogLevel, category: string, message: string): void {
      if (category === "system" && level !== "warning" && level !== "error" && level !== "critical") return;
      logger.fn(level, name, invocationId, message);
    },
  };
  const model = pm.getInvocationModel(coreCtx);
  const { context, inputs } = await model.getArguments();
  const hookData: Record<string, unknown> = {};
  let handler = fn.callback;
  const pre: Record<string, unknown> = {
    invocationContext: context,
    inputs,
    functionCallback: handler,
    hookData,
    appHookData: registry.appHookData,
  };
  await registry.runHooks("preInvocation", pre);
  handler = pre.functionCallback as typeof handler;
  let result: unknown;
  let error: unknown;
  try {
    result = await model.invokeFunction(context, pre.inputs as unknown[], handler);
  } catch (e) {
    error = e;
  }
  coreCtx.state = "postInvocationHooks";
  const post: Record<string, unknown> = {
    invocationContext: context,
    inputs,
    result,
    error,
    hookData,
    appHookData: registry.appHookData,
  };
  await registry.runHooks("postInvocation", post);
  coreCtx.state = "done";
  if (post.error !== undefined && post.error !== null) {
    const e = post.error;
    throw new InvocationError(errMessage(e), e);
  }
  const response = await model.getResponse(context, post.result);
  return { response, result: post.result };
}

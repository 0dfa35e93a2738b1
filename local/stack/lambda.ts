/**
 * A function of the local stack: either its own processes (FunctionHost, what npm start
 * runs) or an in-process stand-in handler (tests of the stack itself), called the same
 * way. For stand-ins, a context object the Powertools middlewares accept, and a timeout
 * that turns an overrunning invocation into a failure (its promise is abandoned).
 */
import { randomUUID } from 'node:crypto';
import { FunctionHost, LambdaTimeoutError } from './function-host';

export { LambdaTimeoutError };

/** The context fields handlers and Powertools read (structurally `aws-lambda`'s Context). */
export interface LocalLambdaContext {
  callbackWaitsForEmptyEventLoop: boolean;
  functionName: string;
  functionVersion: string;
  invokedFunctionArn: string;
  memoryLimitInMB: string;
  awsRequestId: string;
  logGroupName: string;
  logStreamName: string;
  getRemainingTimeInMillis(): number;
  done(error?: Error, result?: unknown): void;
  fail(error: Error | string): void;
  succeed(messageOrObject: unknown): void;
}

/** A Lambda handler as this stack calls it; the real handlers are middy functions of this shape. */
export type LocalHandler = (event: never, context: LocalLambdaContext) => Promise<unknown>;

export interface LocalFunction {
  name: string;
  timeoutMs: number;
  memoryMb: number;
  /** Its own processes, or an in-process handler. */
  run: FunctionHost | LocalHandler;
}

export function lambdaContext(
  fn: Pick<LocalFunction, 'name' | 'timeoutMs' | 'memoryMb'>,
  region = 'us-east-1',
): LocalLambdaContext {
  const deadline = Date.now() + fn.timeoutMs;
  const day = new Date().toISOString().slice(0, 10).replace(/-/g, '/');
  const noop = (): void => undefined;
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: fn.name,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${region}:000000000000:function:${fn.name}`,
    memoryLimitInMB: String(fn.memoryMb),
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${fn.name}`,
    logStreamName: `${day}/[$LATEST]${randomUUID().replace(/-/g, '')}`,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: noop,
    fail: noop,
    succeed: noop,
  };
}

/** Runs one invocation; rejects with LambdaTimeoutError when the function overruns its timeout. */
export async function invoke(fn: LocalFunction, event: unknown, region?: string): Promise<unknown> {
  if (fn.run instanceof FunctionHost) return fn.run.invoke(event);
  const handler = fn.run;
  const context = lambdaContext(fn, region);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new LambdaTimeoutError(`${fn.name} timed out after ${fn.timeoutMs} ms`)),
      fn.timeoutMs,
    );
  });
  try {
    return await Promise.race([handler(event as never, context), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * One Lambda execution environment: the child process the local stack starts per
 * function instance (local/stack/function-host.ts). It imports one handler module once
 * (the cold start), then serves one invocation at a time over IPC, as the Lambda runtime
 * does: its module state (logger, SDK clients, secrets cache) belongs to this process
 * alone. Its environment is the function's, from the template.
 *
 * argv: <handler module path> <export name>. Messages in: {type:'invoke', id, event,
 * context}. Messages out: {type:'ready'}, {type:'result', id, ok, value|error}.
 */
import { pathToFileURL } from 'node:url';

interface InvokeMessage {
  type: 'invoke';
  id: number;
  event: unknown;
  context: {
    functionName: string;
    memoryLimitInMB: string;
    invokedFunctionArn: string;
    awsRequestId: string;
    logGroupName: string;
    logStreamName: string;
    deadlineMs: number;
  };
}

type Handler = (event: unknown, context: unknown) => Promise<unknown>;

function serializeError(err: unknown): { name: string; message: string; stack?: string } {
  if (err instanceof Error) return { name: err.name, message: err.message, ...(err.stack ? { stack: err.stack } : {}) };
  return { name: 'Error', message: String(err) };
}

async function main(): Promise<void> {
  const [modulePath, exportName = 'handler'] = process.argv.slice(2);
  if (!modulePath || !process.send) throw new Error('function-runner needs a module path and an IPC channel');
  const mod = (await import(pathToFileURL(modulePath).href)) as Record<string, unknown>;
  const handler = mod[exportName];
  if (typeof handler !== 'function') throw new Error(`${modulePath} does not export a function "${exportName}"`);
  process.on('message', (message: InvokeMessage) => {
    if (message?.type !== 'invoke') return;
    const { deadlineMs, ...fields } = message.context;
    const noop = (): void => undefined;
    const context = {
      ...fields,
      callbackWaitsForEmptyEventLoop: true,
      functionVersion: '$LATEST',
      getRemainingTimeInMillis: () => Math.max(0, deadlineMs - Date.now()),
      done: noop,
      fail: noop,
      succeed: noop,
    };
    Promise.resolve()
      .then(() => (handler as Handler)(message.event, context))
      .then(
        (value) => process.send?.({ type: 'result', id: message.id, ok: true, value: value ?? null }),
        (err: unknown) => process.send?.({ type: 'result', id: message.id, ok: false, error: serializeError(err) }),
      );
  });
  process.send({ type: 'ready' });
}

// The parent's IPC channel closing means the host is gone: end with it.
process.on('disconnect', () => process.exit(0));
main().catch((err: unknown) => {
  process.stderr.write(`function-runner: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});

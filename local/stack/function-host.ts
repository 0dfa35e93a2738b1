/**
 * Runs one function as Lambda does: each execution environment is its own child process
 * (local/stack/function-runner.ts) with the function's environment and its own module
 * state; one invocation at a time per process; a new process (a cold start) when all are
 * busy, up to the function's concurrency limit (further invocations wait for one); an
 * invocation past the function's timeout kills its process and fails with
 * LambdaTimeoutError, and the next invocation gets a fresh process, as on Lambda.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import { REPO_ROOT } from './template';

export class LambdaTimeoutError extends Error {
  override readonly name = 'LambdaTimeoutError';
}

/** The handler threw or its process died: what Lambda reports as a function error. */
export class FunctionError extends Error {
  override readonly name = 'FunctionError';
  constructor(
    message: string,
    readonly errorType: string,
    readonly remoteStack?: string,
  ) {
    super(message);
  }
}

export interface FunctionHostOptions {
  /** Function name, as in the context and the logs. */
  name: string;
  /** Absolute path of the handler module (its bundle). */
  entry: string;
  /** Absolute path of the runner (local/stack/function-runner.ts bundled). */
  runner: string;
  exportName?: string;
  timeoutMs: number;
  memoryMb: number;
  /** The whole environment of each process (nothing is inherited). */
  env: Record<string, string>;
  /** Most processes at once (reserved concurrency, event source maximum concurrency, or the local cap). */
  maxConcurrency: number;
  /** Node binary for the processes. */
  node: string;
  region: string;
  /** Each line the function's processes print (stdout and stderr). */
  output: (line: string) => void;
  log?: (line: string) => void;
}

interface Environment {
  child: ChildProcess;
  ready: Promise<void>;
  exited: boolean;
  onExit?: (code: number | null, signal: NodeJS.Signals | null) => void;
  onResult?: (message: ResultMessage) => void;
}

interface ResultMessage {
  type: 'result';
  id: number;
  ok: boolean;
  value?: unknown;
  error?: { name: string; message: string; stack?: string };
}

export interface FunctionStats {
  invocations: number;
  errors: number;
  timeouts: number;
  coldStarts: number;
}

export class FunctionHost {
  readonly stats: FunctionStats = { invocations: 0, errors: 0, timeouts: 0, coldStarts: 0 };
  private readonly idle: Environment[] = [];
  private readonly all = new Set<Environment>();
  private readonly waiting: ((env: Environment | undefined) => void)[] = [];
  private nextId = 1;
  private closed = false;

  constructor(readonly options: FunctionHostOptions) {}

  get name(): string {
    return this.options.name;
  }

  /**
   * Starts one environment ahead of the first invocation and resolves once its module is
   * loaded (the local stack waits for this, so it is ready when it says so); rejects when
   * the module fails to load.
   */
  async prewarm(): Promise<void> {
    if (this.closed) return;
    let env = this.idle[0];
    if (!env) {
      env = this.spawn();
      this.idle.push(env);
    }
    try {
      await env.ready;
    } catch (err) {
      throw new Error(`${this.name} failed to start: ${(err as Error).message}`);
    }
  }

  async invoke(event: unknown): Promise<unknown> {
    const env = await this.acquire();
    if (!env) throw new FunctionError(`${this.name} is shut down`, 'Runtime.Shutdown');
    this.stats.invocations += 1;
    let reusable = false;
    try {
      try {
        await env.ready;
      } catch (err) {
        throw new FunctionError(`${this.name} failed to start: ${(err as Error).message}`, 'Runtime.InitError');
      }
      const id = this.nextId++;
      const deadlineMs = Date.now() + this.options.timeoutMs;
      const day = new Date().toISOString().slice(0, 10).replace(/-/g, '/');
      const result = await new Promise<ResultMessage>((resolve, reject) => {
        const timer = setTimeout(() => {
          this.stats.timeouts += 1;
          this.kill(env);
          reject(new LambdaTimeoutError(`${this.name} timed out after ${this.options.timeoutMs} ms`));
        }, this.options.timeoutMs);
        env.onResult = (message) => {
          if (message.id !== id) return;
          clearTimeout(timer);
          resolve(message);
        };
        env.onExit = (code, signal) => {
          clearTimeout(timer);
          reject(
            new FunctionError(
              `${this.name}: the runtime exited during the invocation (${signal ?? `exit code ${code}`})`,
              'Runtime.ExitError',
            ),
          );
        };
        env.child.send({
          type: 'invoke',
          id,
          event,
          context: {
            functionName: this.name,
            memoryLimitInMB: String(this.options.memoryMb),
            invokedFunctionArn: `arn:aws:lambda:${this.options.region}:000000000000:function:${this.name}`,
            awsRequestId: randomUUID(),
            logGroupName: `/aws/lambda/${this.name}`,
            logStreamName: `${day}/[$LATEST]${randomUUID().replace(/-/g, '')}`,
            deadlineMs,
          },
        });
      });
      env.onResult = undefined;
      env.onExit = undefined;
      reusable = !env.exited;
      if (!result.ok) {
        const e = result.error ?? { name: 'Error', message: 'unknown error' };
        throw new FunctionError(e.message, e.name, e.stack);
      }
      return result.value;
    } catch (err) {
      if (!(err instanceof LambdaTimeoutError)) this.stats.errors += 1;
      throw err;
    } finally {
      this.release(env, reusable);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const resolve of this.waiting.splice(0)) resolve(undefined);
    const exits = [...this.all].map(
      (env) =>
        new Promise<void>((resolve) => {
          if (env.exited) return resolve();
          env.child.once('exit', () => resolve());
          env.child.kill('SIGTERM');
          setTimeout(() => env.child.kill('SIGKILL'), 2_000).unref();
        }),
    );
    await Promise.all(exits);
    this.idle.splice(0);
    this.all.clear();
  }

  private acquire(): Promise<Environment | undefined> {
    if (this.closed) return Promise.resolve(undefined);
    const env = this.idle.pop();
    if (env) return Promise.resolve(env);
    if (this.all.size < this.options.maxConcurrency) return Promise.resolve(this.spawn());
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  private release(env: Environment, reusable: boolean): void {
    if (!reusable) this.kill(env);
    const next = this.waiting.shift();
    if (next) next(reusable ? env : this.closed ? undefined : this.spawn());
    else if (reusable) this.idle.push(env);
  }

  private kill(env: Environment): void {
    this.all.delete(env);
    const i = this.idle.indexOf(env);
    if (i >= 0) this.idle.splice(i, 1);
    if (!env.exited) env.child.kill('SIGKILL');
  }

  private spawn(): Environment {
    this.stats.coldStarts += 1;
    const child = spawn(
      this.options.node,
      [this.options.runner, this.options.entry, this.options.exportName ?? 'handler'],
      { cwd: REPO_ROOT, env: this.options.env, stdio: ['ignore', 'pipe', 'pipe', 'ipc'], serialization: 'advanced' },
    );
    for (const stream of [child.stdout, child.stderr])
      if (stream)
        createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY }).on('line', this.options.output);
    const env: Environment = { child, exited: false, ready: Promise.resolve() };
    env.ready = new Promise<void>((resolve, reject) => {
      child.on('message', (message: { type?: string }) => {
        if (message?.type === 'ready') resolve();
        else if (message?.type === 'result') env.onResult?.(message as ResultMessage);
      });
      child.once('exit', (code, signal) => {
        env.exited = true;
        this.all.delete(env);
        const i = this.idle.indexOf(env);
        if (i >= 0) this.idle.splice(i, 1);
        reject(new Error(`process exited (${signal ?? `exit code ${code}`}) before it was ready`));
        env.onExit?.(code, signal);
      });
      child.once('error', (err) => reject(err));
    });
    // A rejection nobody awaits yet (a prewarmed process that failed) is reported on use.
    env.ready.catch(() => undefined);
    this.all.add(env);
    return env;
  }
}

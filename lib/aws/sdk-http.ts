/**
 * Timeouts for every AWS SDK client this project builds (S3, DynamoDB, EventBridge,
 * Secrets Manager). The SDK's defaults never give up on a hung connection: S3 has no
 * timeout at all and the others only a 5-minute idle one, so one stuck call would burn
 * a whole invocation (15–60 s) instead of failing one attempt and letting the SDK's own
 * retries (kept at their defaults) try again.
 *
 * The plain-object form is what the SDK turns into its NodeHttpHandler, so no transitive
 * package has to be imported. `throwOnRequestTimeout` is needed: without it this SDK
 * version only logs a warning when requestTimeout passes.
 */

export interface SdkHttpTimeouts {
  /** TCP + TLS handshake. */
  connectionTimeoutMs: number;
  /** From sending the request to the response headers (covers a whole PutObject upload). */
  requestTimeoutMs: number;
  /** Socket inactivity at any point, including while the response body is read. */
  socketTimeoutMs: number;
}

/**
 * In-region calls take tens of ms. The idle timeout is what catches a hung call (a
 * server that accepted the request and went silent): an attempt and a retry still fit
 * the callback function's 15 s. The request timeout is only a ceiling for a request
 * that keeps trickling bytes, loose enough for a large PutObject from local tooling.
 */
export const SDK_HTTP_TIMEOUTS: Readonly<SdkHttpTimeouts> = Object.freeze({
  connectionTimeoutMs: 3_000,
  requestTimeoutMs: 30_000,
  socketTimeoutMs: 6_000,
});

export interface SdkRequestHandlerOptions {
  connectionTimeout: number;
  requestTimeout: number;
  socketTimeout: number;
  throwOnRequestTimeout: true;
}

/** The `requestHandler` option for an SDK v3 client constructor. */
export function sdkRequestHandler(timeouts: Partial<SdkHttpTimeouts> = {}): SdkRequestHandlerOptions {
  const t = { ...SDK_HTTP_TIMEOUTS, ...timeouts };
  return {
    connectionTimeout: t.connectionTimeoutMs,
    requestTimeout: t.requestTimeoutMs,
    socketTimeout: t.socketTimeoutMs,
    throwOnRequestTimeout: true,
  };
}

/**
 * The callback route's authorizer decision (functions/callback-authorizer): the `{secret}`
 * path segment against the accepted secrets (current and, while rotating, previous),
 * in constant time (auth.ts). It runs before API Gateway writes a byte to the inbox, so
 * a wrong secret stores nothing. `not-found` becomes API Gateway's UNAUTHORIZED gateway
 * response, which the stack answers exactly like an unknown route (404 RouteNotFound).
 *
 * A secret that cannot be read throws SecretUnavailableError: the authorizer fails and
 * API Gateway answers 5xx, so IVA retries instead of being told the route is gone.
 * No refresh on a mismatch: anyone could then make every request read Secrets Manager.
 */
import { awsErrorName } from '../aws/errors';
import { type LoggerPort, silentLogger } from '../observability';
import { secretMatches } from './auth';
import { SecretUnavailableError } from './errors';

export type CallbackAuthDecision = 'allow' | 'not-found';

export interface CallbackAuthDeps {
  secrets: { get(): Promise<string[]> };
  logger?: LoggerPort;
}

export async function authorizeCallback(
  deps: CallbackAuthDeps,
  secret: string | undefined | null,
): Promise<CallbackAuthDecision> {
  const log = deps.logger ?? silentLogger;
  let accepted: string[];
  try {
    accepted = await deps.secrets.get();
  } catch (error) {
    log.error('Callback secret unavailable', { errorName: awsErrorName(error) });
    throw new SecretUnavailableError();
  }
  if (!secretMatches(secret, accepted)) {
    log.warn('Callback refused: wrong or missing secret');
    return 'not-found';
  }
  return 'allow';
}

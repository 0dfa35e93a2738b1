/**
 * The caller direct-submit records: the client-auth authorizer's verified key on the
 * client-key API, the SigV4 principal (`requestContext.identity`) on the IAM API, and the
 * body-hash check only where an authorizer verified a signed X-Content-Sha256.
 */
import { describe, expect, it } from 'vitest';
import { callerOf, toApiRequest } from '../../../functions/direct-submit/handler';
import { lambdaContext, restEvent } from './events';

const ROLE_SESSION = 'arn:aws:sts::123456789012:assumed-role/uploader/i-0abc';

function iamEvent() {
  const event = restEvent({ method: 'GET', path: '/v1/submissions/api_x', resource: '/v1/submissions/{id}' });
  Object.assign(event.requestContext.identity, {
    userArn: ROLE_SESSION,
    caller: 'AROAEXAMPLE:i-0abc',
    accountId: '123456789012',
    accessKey: 'ASIAEXAMPLE',
    apiKey: null,
  });
  return event;
}

describe('callerOf', () => {
  it('takes the client key the authorizer verified on the client-key API', () => {
    const event = restEvent({ method: 'POST', path: '/v1/images', body: 'x' });
    event.requestContext.authorizer = {
      accessKeyId: 'AKIBEXAMPLE',
      client: 'shop',
      bodySha256: 'ab',
      principalId: 'x',
    };
    expect(callerOf(event)).toEqual({ auth: 'client-key', client: 'shop', accessKeyId: 'AKIBEXAMPLE' });
    expect(toApiRequest(event, lambdaContext()).signedBodySha256).toBe('ab');
  });

  it('takes the SigV4 principal of requestContext.identity on the IAM API, with no body-hash check', () => {
    const request = toApiRequest(iamEvent(), lambdaContext());
    expect(request.caller).toEqual({
      auth: 'iam',
      arn: ROLE_SESSION,
      accountId: '123456789012',
      accessKeyId: 'ASIAEXAMPLE',
    });
    expect(request.signedBodySha256).toBeUndefined();
  });

  it('names no caller when API Gateway established none (the callback route, tests)', () => {
    expect(callerOf(restEvent({ method: 'POST', path: '/callbacks/x' }))).toBeUndefined();
  });
});

/**
 * The one answer for "no such route", in IVA's error shape. API Gateway gives it for an
 * unknown path (infra/stack.ts, the MISSING_AUTHENTICATION_TOKEN gateway response; the
 * local gateway the same), and result-callback gives the very same bytes and headers for
 * a wrong callback secret, so probing cannot tell the callback route exists.
 */
export const ROUTE_NOT_FOUND_STATUS = 404;
export const ROUTE_NOT_FOUND_CODE = 'RouteNotFound';
export const ROUTE_NOT_FOUND_MESSAGE = 'No such route. See the README for the routes of this API.';

/** The body API Gateway's gateway responses produce (`$context.requestId` filled in). */
export function gatewayErrorBody(requestId: string, code: string, message: string): string {
  return JSON.stringify({ ResponseMetadata: { RequestId: requestId, Error: { Code: code, Message: message } } });
}

/**
 * Headers of a gateway error besides those every answer gets (length, request id):
 * `x-amzn-ErrorType` is set explicitly on the deployed gateway response too, so the
 * function can copy it exactly.
 */
export function gatewayErrorHeaders(code: string): Record<string, string> {
  return { 'content-type': 'application/json', 'x-amzn-errortype': code };
}

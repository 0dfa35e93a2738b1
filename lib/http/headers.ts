/**
 * Request headers as API Gateway hands them to Lambda (REST payload v1 and REQUEST
 * authorizers): a single-value map and a multi-value map, names in the client's case.
 */

export type HeaderValues = Readonly<Record<string, string | undefined>> | null | undefined;
export type MultiHeaderValues = Readonly<Record<string, readonly string[] | undefined>> | null | undefined;

/**
 * One map with lower-case names. Repeated headers are joined with ", " (RFC 9110); the
 * single-value map wins where both have a name, as API Gateway itself treats it as the header.
 */
export function lowerCaseHeaders(headers: HeaderValues, multiValueHeaders?: MultiHeaderValues): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, values] of Object.entries(multiValueHeaders ?? {})) {
    if (Array.isArray(values) && values.length > 0) out[name.toLowerCase()] = values.join(', ');
  }
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (typeof value === 'string') out[name.toLowerCase()] = value;
  }
  return out;
}

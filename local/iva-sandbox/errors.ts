/** The sandbox's refusals, with the codes and HTTP statuses of the real gateway. */
export class SandboxError extends Error {
  override readonly name = 'SandboxError';
  constructor(
    readonly code: string,
    readonly httpStatus: number,
    message: string,
  ) {
    super(message);
  }
}

export const missingParameter = (message: string): SandboxError => new SandboxError('MissingParameter', 400, message);
export const invalidParameter = (message: string): SandboxError => new SandboxError('InvalidParameter', 400, message);

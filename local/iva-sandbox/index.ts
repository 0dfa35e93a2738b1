export { IvaSandbox, startIvaSandbox, parseFaults, DEFAULT_SANDBOX_CREDENTIALS, IVA_VERSION } from './server';
export { verifySignature, parseXDate } from './auth';
export { SandboxError } from './errors';
export type { SandboxKind, ParsedSubmission } from './multipart';
export type {
  CallbackDelivery,
  CallbackLabel,
  CallbackStatus,
  Fault,
  IvaSandboxOptions,
  RateLimit,
  SandboxAction,
  SandboxEvents,
  SandboxRequest,
  Submission,
  SubmissionSummary,
} from './types';

export * from './types';
export * from './errors';
export { createDynamoLedger, ledgerTableDefinition, type DynamoLedgerOptions } from './dynamo';

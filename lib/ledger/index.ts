export * from './types';
export * from './errors';
export { createDynamoLedger, createLedgerTable, ledgerTableDefinition, type DynamoLedgerOptions } from './dynamo';

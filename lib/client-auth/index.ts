export * from './verify';
export * from './keys';
export * from './replay';
export * from './authorizer';

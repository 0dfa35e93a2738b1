import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Listens on 127.0.0.1 and resolves the bound address (port 0 → a free port). */
export function listen(server: Server, port = 0, host = '127.0.0.1'): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve(server.address() as AddressInfo);
    });
  });
}

/**
 * Closes a server without waiting for clients' keep-alive sockets (the AWS SDK and
 * fetch keep them open for seconds): stop accepting, then destroy every connection.
 */
export function closeServer(
  server: Server,
  close: (cb: (err?: Error | null) => void) => void = (cb) => server.close(cb),
): Promise<void> {
  if (!server.listening) return Promise.resolve();
  return new Promise((resolve, reject) => {
    close((err) => (err && (err as NodeJS.ErrnoException).code !== 'ERR_SERVER_NOT_RUNNING' ? reject(err) : resolve()));
    server.closeAllConnections();
  });
}

export function urlOf(address: AddressInfo): string {
  return `http://${address.address}:${address.port}`;
}

import { createServer, connect } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';

/**
 * A loopback TCP proxy to a server the tests share (PostgreSQL), so a test can
 * take "the network" away from one app without touching the server itself.
 */
export interface TcpProxy {
  /** The port the proxy listens on, on 127.0.0.1. */
  readonly port: number;
  /** `url` with its host and port replaced by the proxy's. */
  via(url: string): string;
  /** Resets every open connection and refuses new ones until `restore`. */
  cut(): void;
  /** Keeps connections open but forwards nothing, like a hung server. */
  stall(): void;
  /** Accepts and forwards connections again. */
  restore(): void;
  /** Connections forwarded so far (for checking the app really goes through the proxy). */
  readonly connections: number;
  close(): Promise<void>;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const open = new Set<Socket>();
  let down = false;
  let stalled = false;
  let connections = 0;

  const track = (socket: Socket): void => {
    open.add(socket);
    socket.on('close', () => open.delete(socket));
    // A reset from either side ends both; the error itself is the point of the test.
    socket.on('error', () => undefined);
  };

  const server = createServer((client) => {
    track(client);
    if (down) {
      client.resetAndDestroy();
      return;
    }
    connections++;
    const upstream = connect(target.port, target.host);
    track(upstream);
    // Forwarded by hand rather than piped, so `stall` can drop bytes without closing anything.
    client.on('data', (chunk: Buffer) => void (stalled || upstream.write(chunk)));
    upstream.on('data', (chunk: Buffer) => void (stalled || client.write(chunk)));
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  const resetAll = (): void => {
    for (const socket of open) socket.resetAndDestroy();
    open.clear();
  };

  return {
    port,
    via(url) {
      const u = new URL(url);
      u.hostname = '127.0.0.1';
      u.port = String(port);
      return u.toString();
    },
    cut() {
      down = true;
      resetAll();
    },
    stall() {
      stalled = true;
    },
    restore() {
      down = false;
      stalled = false;
    },
    get connections() {
      return connections;
    },
    async close() {
      down = true;
      resetAll();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

// The upstream for the proxy bench: a plain node:http server answering every
// request with a small JSON body, keep-alive. Both proxies forward to it.
// Env: BENCH_PORT.
import { createServer } from 'node:http';

const body = JSON.stringify({ id: 'item_01jdx3m5a8q2v7k4r9t6w1y3zb', name: 'widget', price: 1250, tags: ['a', 'b', 'c'] });
const server = createServer((req, res) => {
  req.resume();
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
});
server.keepAliveTimeout = 60_000;
server.listen(Number(process.env.BENCH_PORT), '127.0.0.1');
process.once('SIGTERM', () => server.close(() => process.exit(0)));

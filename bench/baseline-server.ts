/**
 * The ceiling: a bare node:http server that reads a POST body and answers 201 with a fixed JSON body of
 * the size of a message response. Nothing the real server does (routing, validation, SQLite) happens here,
 * so its requests/s is what the machine and the load generator allow. Run as a child process by run.ts:
 * PORT and RESPONSE_BODY come from the environment.
 */
import { createServer } from 'node:http';

const port = Number(process.env.PORT ?? 0);
const body = Buffer.from(process.env.RESPONSE_BODY ?? '{}');

const server = createServer((request, response) => {
  request.on('data', () => {});
  request.on('end', () => {
    response.writeHead(201, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': body.length,
    });
    response.end(body);
  });
});
server.keepAliveTimeout = 72_000;
server.listen(port, '127.0.0.1', () => {
  const address = server.address();
  console.log(`listening ${typeof address === 'object' && address ? address.port : port}`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));

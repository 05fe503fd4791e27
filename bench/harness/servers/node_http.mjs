/**
 * A Node.js `http` server answering every request with `Hello, World!`
 * (keep-alive is Node's default for HTTP/1.1).
 *
 * Run: node bench/harness/servers/node_http.mjs 8000
 *
 * Prints `listening <port>` when ready, then serves forever.
 *
 * @module
 */
import http from "node:http";

const port = Number(process.argv[2] ?? "8000");
const BODY = "Hello, World!";

const server = http.createServer((_req, res) => {
  res.writeHead(200, {
    "Content-Type": "text/plain",
    "Content-Length": BODY.length,
  });
  res.end(BODY);
});
server.listen({ host: "127.0.0.1", port, backlog: 1024 }, () => {
  console.log(`listening ${server.address().port}`);
});

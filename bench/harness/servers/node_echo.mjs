/**
 * A Node.js `net` TCP echo server (each socket piped into itself, so
 * back-pressure is handled by Node's streams).
 *
 * Run: node bench/harness/servers/node_echo.mjs 8000
 *
 * Prints `listening <port>` when ready, then serves forever.
 *
 * @module
 */
import net from "node:net";

const port = Number(process.argv[2] ?? "8000");

const server = net.createServer((socket) => {
  socket.setNoDelay(true);
  socket.on("error", () => socket.destroy());
  socket.pipe(socket);
});
server.listen({ host: "127.0.0.1", port, backlog: 1024 }, () => {
  console.log(`listening ${server.address().port}`);
});

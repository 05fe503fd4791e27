"""A minimal CPython asyncio HTTP/1.1 server, with the stock loop or uvloop.

Run with Debian's interpreter, the one python3-uvloop installs for:

    /usr/bin/python3 bench/harness/servers/asyncio_http.py 8000
    /usr/bin/python3 bench/harness/servers/asyncio_http.py 8000 --uvloop

An asyncio.Protocol that buffers bytes, counts the requests they hold (a
request ends at CRLF CRLF; bodies are not supported, which is fine for
wrk's GETs) and answers each with the same fixed keep-alive response
whose body is "Hello, World!". Pipelined requests are answered in one
write.

Prints "listening <port>" when ready, then serves forever.
"""

import argparse
import asyncio

RESPONSE = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: text/plain\r\n"
    b"Content-Length: 13\r\n"
    b"\r\n"
    b"Hello, World!"
)


class Http(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        self.buf = b""

    def data_received(self, data):
        buf = self.buf + data if self.buf else data
        count = buf.count(b"\r\n\r\n")
        if count:
            self.buf = buf[buf.rindex(b"\r\n\r\n") + 4 :]
            self.transport.write(RESPONSE * count)
        else:
            self.buf = buf
        if len(self.buf) > 65536:
            self.transport.close()


async def main(port):
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Http, "127.0.0.1", port, backlog=1024)
    print(f"listening {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("port", type=int)
    parser.add_argument("--uvloop", action="store_true", help="use uvloop")
    args = parser.parse_args()
    if args.uvloop:
        import uvloop

        uvloop.install()
    asyncio.run(main(args.port))

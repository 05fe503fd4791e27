"""CPython asyncio TCP echo server, with the stock loop or uvloop.

Run with Debian's interpreter, the one python3-uvloop installs for:

    /usr/bin/python3 bench/harness/servers/asyncio_echo.py 8000 protocol
    /usr/bin/python3 bench/harness/servers/asyncio_echo.py 8000 streams --uvloop

Modes:
  protocol  an asyncio.Protocol whose data_received writes the data back
            (reading pauses while the transport's write buffer is full)
  streams   asyncio.start_server; reader.read(65536), writer.write(),
            await writer.drain()

Prints "listening <port>" when ready, then serves forever.
"""

import argparse
import asyncio


class Echo(asyncio.Protocol):
    """Writes back whatever arrives."""

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)

    def pause_writing(self):
        self.transport.pause_reading()

    def resume_writing(self):
        self.transport.resume_reading()


async def echo_stream(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def main(port, mode):
    loop = asyncio.get_running_loop()
    if mode == "protocol":
        server = await loop.create_server(Echo, "127.0.0.1", port, backlog=1024)
    else:
        server = await asyncio.start_server(
            echo_stream, "127.0.0.1", port, backlog=1024
        )
    print(f"listening {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("port", type=int)
    parser.add_argument("mode", choices=["protocol", "streams"])
    parser.add_argument("--uvloop", action="store_true", help="use uvloop")
    args = parser.parse_args()
    if args.uvloop:
        import uvloop

        uvloop.install()
    asyncio.run(main(args.port, args.mode))

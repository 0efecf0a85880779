#!/usr/bin/env python3
"""A TCP relay on 127.0.0.1 that adds a fixed one-way delay to every chunk in
both directions: a stand-in for a long network path on a kernel without
netem (bench/run.sh, the "100 ms RTT" row).

    relay.py --upstream PORT --delay SECONDS --port-file FILE

With --delay D the round trip is 2D. A new connection is modelled as well:
its first bytes leave no earlier than 2D after the accept, as if the TCP
handshake had taken one round trip, so a fresh connection costs two round
trips before the answer starts, as on a real path. Data keeps its order;
bandwidth is not limited.
"""
import argparse
import asyncio
import os
import time


async def pump(reader, writer, delay, not_before):
    queue = asyncio.Queue()

    async def send():
        while True:
            due, data = await queue.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if data is None:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            writer.write(data)
            await writer.drain()

    sender = asyncio.ensure_future(send())
    try:
        while True:
            data = await reader.read(65536)
            due = max(time.monotonic(), not_before) + delay
            queue.put_nowait((due, data or None))
            if not data:
                break
        await sender
    except (ConnectionError, OSError):
        sender.cancel()


async def serve(args):
    async def handle(c_reader, c_writer):
        accepted = time.monotonic()
        try:
            u_reader, u_writer = await asyncio.open_connection("127.0.0.1", args.upstream)
        except OSError:
            c_writer.close()
            return
        await asyncio.gather(pump(c_reader, u_writer, args.delay, accepted + 2 * args.delay),
                             pump(u_reader, c_writer, args.delay, 0.0), return_exceptions=True)
        for w in (c_writer, u_writer):
            w.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
    os.replace(tmp, args.port_file)
    async with server:
        await server.serve_forever()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", type=int, required=True)
    ap.add_argument("--delay", type=float, required=True)
    ap.add_argument("--port-file", required=True)
    asyncio.run(serve(ap.parse_args()))


if __name__ == "__main__":
    main()

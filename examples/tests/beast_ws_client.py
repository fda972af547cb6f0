#!/usr/bin/env python3
# The WebSocket client of beast_server.sh, on Python's websockets (Debian: python3-websockets).
#   beast_ws_client.py echo PORT   text and binary messages, each echoed whole; prints "echo ok"
#   beast_ws_client.py hold PORT   one echo, then "holding", then waits (20 s at most) for the
#                                  server to close and prints "closed <code>"
import asyncio
import sys

import websockets


async def echo(uri):
    async with websockets.connect(uri, max_size=None) as ws:
        for message in ["hello", "", "é" * 1000, b"\x00\x01\xff", bytes(range(256)) * 300]:
            await ws.send(message)
            got = await asyncio.wait_for(ws.recv(), 10)
            if got != message or type(got) is not type(message):
                sys.exit(f"echo: sent {message!r:.40}, got {got!r:.40}")
        for i in range(100):
            await ws.send(f"m{i}")
        for i in range(100):
            got = await asyncio.wait_for(ws.recv(), 10)
            if got != f"m{i}":
                sys.exit(f"echo: message {i} came back as {got!r}")
    print("echo ok", flush=True)


async def hold(uri):
    async with websockets.connect(uri) as ws:
        await ws.send("hi")
        if await asyncio.wait_for(ws.recv(), 10) != "hi":
            sys.exit("hold: no echo")
        print("holding", flush=True)
        try:
            await asyncio.wait_for(ws.recv(), 20)
            sys.exit("hold: a message came, not the close")
        except websockets.exceptions.ConnectionClosed as e:
            print(f"closed {e.code}", flush=True)
        except asyncio.TimeoutError:
            sys.exit("hold: the server did not close within 20 s")


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("echo", "hold"):
        sys.exit("usage: beast_ws_client.py echo|hold PORT")
    uri = f"ws://127.0.0.1:{sys.argv[2]}/ws"
    asyncio.run(echo(uri) if sys.argv[1] == "echo" else hold(uri))


main()

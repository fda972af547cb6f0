#!/usr/bin/python3
"""WebSocket protocol cases against examples/ws_echo, driven by Python's websockets package
(Debian's python3-websockets): a client nobody on this project wrote.

  ws_echo_cases.py CASE WS_ECHO_BINARY

Starts ws_echo on a port the kernel picks (read back from its "Listening on" line), runs
CASE, stops the server with SIGTERM and checks it exits 0. Every wait is for an event
(a frame, a close, the end of a connection), each bounded by a deadline.
"""
import asyncio
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import time

import websockets
from websockets.exceptions import ConnectionClosed
from websockets.frames import Opcode

DEADLINE = 20  # seconds any one wait may take before the case fails


class Server:
    def __init__(self, binary, *args):
        self.proc = subprocess.Popen([binary, "--port", "0", *args], stdout=subprocess.PIPE, text=True)
        for line in self.proc.stdout:
            m = re.match(r"Listening on ws://([\d.]+):(\d+)/ws", line)
            if m:
                self.host, self.port = m.group(1), int(m.group(2))
                break
        else:
            sys.exit("ws_echo ended before it listened")
        self.url = f"ws://{self.host}:{self.port}/ws"

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        rest = self.proc.stdout.read()
        code = self.proc.wait(timeout=DEADLINE)
        assert code == 0, f"ws_echo exited {code}:\n{rest}"
        return rest


def expect_close(err, code):
    assert isinstance(err, ConnectionClosed), err
    got = err.rcvd.code if err.rcvd else None
    assert got == code, f"close code {got}, wanted {code}"


async def closed_with(ws):
    """Reads until the server closes; the exception saying how."""
    try:
        while True:
            await asyncio.wait_for(ws.recv(), DEADLINE)
    except ConnectionClosed as err:
        return err


async def echo(server):
    async with websockets.connect(server.url) as ws:
        for text in ["hello", "", "héllo wörld ✓ 😀", "x" * 100000]:
            await ws.send(text)
            assert await asyncio.wait_for(ws.recv(), DEADLINE) == text
        for data in [b"\x00\x01\xff", b"", os.urandom(200000)]:
            await ws.send(data)
            assert await asyncio.wait_for(ws.recv(), DEADLINE) == data


async def fragmented(server):
    async with websockets.connect(server.url) as ws:
        await ws.send(["frag", "ment", "ed ✓"])  # one message, three frames
        assert await asyncio.wait_for(ws.recv(), DEADLINE) == "fragmented ✓"
        await ws.send([b"\x01" * 1000, b"\x02" * 1000])
        assert await asyncio.wait_for(ws.recv(), DEADLINE) == b"\x01" * 1000 + b"\x02" * 1000
        # A ping between the fragments of a message is answered at once.
        await ws.write_frame(False, Opcode.TEXT, b"a")
        pong = await ws.ping(b"mid")
        await asyncio.wait_for(pong, DEADLINE)
        await ws.write_frame(True, Opcode.CONT, b"b")
        assert await asyncio.wait_for(ws.recv(), DEADLINE) == "ab"


async def ping_pong(server):
    async with websockets.connect(server.url) as ws:
        for payload in [b"", b"payload"]:
            pong = await ws.ping(payload)
            await asyncio.wait_for(pong, DEADLINE)


def raw_handshake(server):
    s = socket.create_connection((server.host, server.port), timeout=DEADLINE)
    s.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        assert chunk, "closed during the handshake"
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head
    assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in head, head
    return s, head.split(b"\r\n\r\n", 1)[1]


def idle_ping(server):
    """Silent, the client gets a ping; answering nothing, it is dropped."""
    s, rest = raw_handshake(server)
    data = rest
    while len(data) < 2:
        data += s.recv(4096)
    assert data[0] == 0x89, f"first frame {data[0]:#x}, wanted a ping"
    while s.recv(4096):
        pass  # until the server ends the connection
    s.close()


async def oversized(server):
    async with websockets.connect(server.url) as ws:
        await ws.send("x" * 1024)  # the limit itself passes
        assert await asyncio.wait_for(ws.recv(), DEADLINE) == "x" * 1024
        await ws.send("x" * 1025)
        expect_close(await closed_with(ws), 1009)
    async with websockets.connect(server.url) as ws:
        await ws.send([b"y" * 600, b"y" * 600])  # too big only once assembled
        expect_close(await closed_with(ws), 1009)


async def invalid_utf8(server):
    async with websockets.connect(server.url) as ws:
        await ws.write_frame(True, Opcode.TEXT, b"ok \xc3\x28")
        expect_close(await closed_with(ws), 1007)
    async with websockets.connect(server.url) as ws:
        # Split inside a character: valid once assembled, so echoed.
        await ws.write_frame(False, Opcode.TEXT, b"\xe2\x9c")
        await ws.write_frame(True, Opcode.CONT, b"\x93")
        assert await asyncio.wait_for(ws.recv(), DEADLINE) == "✓"
        await ws.write_frame(True, Opcode.TEXT, b"\xed\xa0\x80")  # a surrogate
        expect_close(await closed_with(ws), 1007)


async def close_codes(server):
    for code, reason in [(1000, ""), (4000, "bye"), (3001, "app")]:
        ws = await websockets.connect(server.url)
        await ws.send("before")
        assert await asyncio.wait_for(ws.recv(), DEADLINE) == "before"
        await asyncio.wait_for(ws.close(code, reason), DEADLINE)
        assert ws.close_code == code, f"server answered {ws.close_code}, wanted {code}"
    # The server's own close: SIGTERM tells every WebSocket it is going away.
    ws = await websockets.connect(server.url)
    await ws.send("hi")
    assert await asyncio.wait_for(ws.recv(), DEADLINE) == "hi"
    server.proc.send_signal(signal.SIGTERM)
    err = await closed_with(ws)
    expect_close(err, 1001)
    assert err.rcvd.reason == "server going away", err.rcvd.reason


async def drain_codes(server):
    """SIGHUP replaces every worker: its clients get 1012 and reconnect. SIGTERM: 1001."""
    clients = [await websockets.connect(server.url) for _ in range(6)]
    for i, ws in enumerate(clients):
        await ws.send(f"before {i}")
        assert await asyncio.wait_for(ws.recv(), DEADLINE) == f"before {i}"
    server.proc.send_signal(signal.SIGHUP)
    for err in await asyncio.gather(*(closed_with(ws) for ws in clients)):
        expect_close(err, 1012)
        assert err.rcvd.reason == "server restarting", err.rcvd.reason
    clients = [await websockets.connect(server.url) for _ in range(6)]
    for i, ws in enumerate(clients):
        await ws.send(f"after {i}")
        assert await asyncio.wait_for(ws.recv(), DEADLINE) == f"after {i}"
    server.proc.send_signal(signal.SIGTERM)
    for err in await asyncio.gather(*(closed_with(ws) for ws in clients)):
        expect_close(err, 1001)


def fds(server):
    s = socket.create_connection((server.host, server.port), timeout=DEADLINE)
    s.sendall(b"GET /fds HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    reply = b""
    while chunk := s.recv(4096):
        reply += chunk
    s.close()
    return int(reply.split(b"\r\n\r\n", 1)[1])


async def abrupt(server):
    before = fds(server)
    for i in range(30):
        s, _ = raw_handshake(server)
        if i % 3 == 0:
            s.sendall(b"\x81\xfe\x10\x00")  # a frame's head, its payload never sent
        elif i % 3 == 1:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # a reset
        s.close()
    async with websockets.connect(server.url) as ws:
        await ws.send("still here")
        assert await asyncio.wait_for(ws.recv(), DEADLINE) == "still here"
    # The server notices each end on its own time: wait until it has, or the deadline.
    deadline = time.monotonic() + DEADLINE
    while (now := fds(server)) > before:
        assert time.monotonic() < deadline, f"{now} fds open, {before} before: a leak"
        await asyncio.sleep(0.05)


async def slow_reader(server):
    # max_queue=1: the client's library stops reading once one message waits unread.
    async with websockets.connect(server.url, max_queue=1) as ws:
        chunk = b"z" * 32768
        for _ in range(1000):  # 32 MB: far past the kernel's buffers and the 64 KiB queue
            await ws.send(chunk)
        err = await closed_with(ws)
        expect_close(err, 1008)


CASES = {
    "echo": (echo, []),
    "fragmented": (fragmented, []),
    "ping_pong": (ping_pong, []),
    "idle_ping": (idle_ping, ["--ping-ms", "200"]),
    "oversized": (oversized, ["--max-message", "1024"]),
    "invalid_utf8": (invalid_utf8, []),
    "close_codes": (close_codes, []),
    "drain_codes": (drain_codes, []),
    "abrupt": (abrupt, ["--workers", "1"]),
    "slow_reader": (slow_reader, ["--send-queue", "65536"]),
}


def main():
    case, binary = sys.argv[1], sys.argv[2]
    run, args = CASES[case]
    server = Server(binary, *args, "--workers", "2")  # the first --workers given wins
    try:
        result = run(server)
        if asyncio.iscoroutine(result):
            asyncio.run(result)
        if case in ("close_codes", "drain_codes"):
            assert server.proc.wait(timeout=DEADLINE) == 0
        else:
            server.stop()
    finally:
        if server.proc.poll() is None:
            server.proc.kill()
    print(f"{case}: ok")


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""examples/chat as its users run it: two instances standing for two hosts (127.0.0.1 and
127.0.0.2, two workers each) on one real redis-server of the test's own, driven by Python's
websockets (Debian's python3-websockets) and, for the page, headless Chromium.

  chat_cases.py CASE CHAT_BINARY

Every wait is for an event (a line, a frame, a close, a DOM change), each bounded by DEADLINE;
every loop is bounded in count.
"""
import asyncio
import collections
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))

import websockets  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402

from redis_server import RedisServer, free_loopback_port  # noqa: E402

DEADLINE = 30  # seconds any one wait may take before the case fails
CLIENTS = 200


class Chat:
    """One instance: a primary and its workers on `host`, on a port the kernel picks."""

    def __init__(self, binary, host, redis, workers=2, with_log=False, options=()):
        """with_log: its stderr too is read, by wait_for; else it waits until it has subscribed."""
        self.proc = subprocess.Popen([binary, "--host", host, "--port", "0", "--workers", str(workers),
                                      "--redis", redis.address, *options], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT if with_log else None, text=True)
        self.lines = []
        self.stopping = False
        m = re.match(r"Listening on http://([\d.]+):(\d+)/", self.wait_for(r"Listening on http://"))
        self.host, self.port = m.group(1), int(m.group(2))
        self.instance = re.search(r" as (\S+)", self.wait_for(r"Primary \d+ running as ")).group(1)
        if not with_log:
            self.wait_for(r"Subscribed to redis")
        self.url = f"ws://{self.host}:{self.port}/ws"

    def wait_for(self, pattern, after=0):
        """The first line from the after-th on, read or to come, that matches `pattern`."""
        for line in self.lines[after:]:
            if re.match(pattern, line):
                return line
        for line in self.proc.stdout:  # ends at its exit, should it fail
            self.lines.append(line)
            if re.match(pattern, line):
                return line
        sys.exit(f"chat ended before it printed {pattern!r}:\n{''.join(self.lines)}")

    def get(self, path):
        c = http.client.HTTPConnection(self.host, self.port, timeout=DEADLINE)
        c.request("GET", path)
        r = c.getresponse()
        body = r.read().decode()
        c.close()
        return r.status, body

    def signal(self, signo):
        self.stopping = self.stopping or signo == signal.SIGTERM
        self.proc.send_signal(signo)

    def stop(self):
        if not self.stopping:  # a second SIGTERM would not wait for the workers
            self.signal(signal.SIGTERM)
        rest = self.proc.stdout.read()
        code = self.proc.wait(timeout=DEADLINE)
        assert code == 0, f"chat exited {code}:\n{rest}"

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()


class Client:
    every = []  # every client made: closed at the case's end, while its loop still runs

    def __init__(self, ws):
        Client.every.append(self)
        self.ws = ws
        self.worker = ws.response_headers["X-Cluster-Worker"]
        self.got = collections.Counter()

    async def receive(self, n):
        """The next n messages, counted."""
        for _ in range(n):
            self.got[await asyncio.wait_for(self.ws.recv(), DEADLINE)] += 1

    async def until(self, marker):
        """Counts messages until `marker`, which is not counted."""
        for _ in range(100 * CLIENTS):
            text = await asyncio.wait_for(self.ws.recv(), DEADLINE)
            if text == marker:
                return
            self.got[text] += 1
        raise AssertionError(f"no {marker!r} among {100 * CLIENTS} messages")


async def connect(url, sid=None):
    cookie = {"Cookie": f"theme=dark; sid={sid}"} if sid else None
    return Client(await asyncio.wait_for(websockets.connect(url, max_size=1 << 20, extra_headers=cookie), DEADLINE))


async def connect_all(chats, n):
    return list(await asyncio.gather(*(connect(chats[i % len(chats)].url) for i in range(n))))


async def closed_with(client):
    """Reads until the server closes; the exception saying how."""
    try:
        for _ in range(100 * CLIENTS):
            await asyncio.wait_for(client.ws.recv(), DEADLINE)
    except ConnectionClosed as err:
        return err
    raise AssertionError("never closed")


async def round_of_messages(clients, tag):
    """Every client sends one message; every client gets every one exactly once."""
    expected = {f"{tag} {i}" for i in range(len(clients))}
    for c in clients:
        c.got.clear()
    await asyncio.gather(*(c.ws.send(f"{tag} {i}") for i, c in enumerate(clients)))
    await asyncio.gather(*(c.receive(len(clients)) for c in clients))
    # Anything more, a second copy, would come before a marker sent after.
    await clients[0].ws.send(f"{tag} end")
    await asyncio.gather(*(c.until(f"{tag} end") for c in clients))
    for i, c in enumerate(clients):
        assert set(c.got) == expected, f"client {i} ({c.worker}): missing {sorted(expected - set(c.got))[:5]}"
        twice = [t for t, n in c.got.items() if n != 1]
        assert not twice, f"client {i} ({c.worker}): more than once: {twice[:5]}"


def workers_of(clients):
    return collections.Counter(c.worker for c in clients)


async def fan_out(chats, redis):
    clients = await connect_all(chats, CLIENTS)
    spread = workers_of(clients)
    assert len(spread) == 4, f"clients on {dict(spread)}: wanted both workers of both instances"
    await round_of_messages(clients, "fan-out")
    # What a client sends is delivered verbatim, as one frame: an empty one, and a big one.
    for text in ["", "héllo wörld ✓ 😀", "y" * 60000]:
        await clients[0].ws.send(text)
        await asyncio.gather(*(c.receive(1) for c in clients))
        for c in clients:
            assert c.got[text] == 1, f"{c.worker} missed a {len(text)}-byte message"


async def too_big(chats, redis):
    c = await connect(chats[0].url)
    await c.ws.send("z" * 70000)  # past the 64 KiB default
    err = await closed_with(c)
    assert err.rcvd and err.rcvd.code == 1009, err


async def slow_reader(chats, redis):
    """A client that reads nothing is closed with 1008 once 1 MiB waits for it; the one that
    sends, reading each message back before the next, gets every one."""
    slow = Client(await asyncio.wait_for(websockets.connect(chats[0].url, max_queue=1), DEADLINE))
    sender = await connect(chats[0].url)
    chunk, count = "s" * 60000, 300  # 18 MB: past what the kernel buffers for a client that stops reading
    for _ in range(count):
        await sender.ws.send(chunk)
        await sender.receive(1)
    assert sender.got[chunk] == count, sender.got[chunk]
    err = await closed_with(slow)
    assert err.rcvd and err.rcvd.code == 1008, err


def visits(chats, redis):
    for i in range(1, 61):
        status, body = chats[i % 2].get("/visits")
        assert status == 200 and body == str(i), f"visit {i}: {status} {body!r}"
    status, body = chats[0].get("/")
    assert status == 200 and "new WebSocket" in body, status


async def reload(chats, redis):
    a, b = chats
    clients = await connect_all(chats, CLIENTS)
    on_a = [c for c in clients if c.worker.startswith(a.instance)]
    on_b = [c for c in clients if c.worker.startswith(b.instance)]
    assert on_a and on_b and len(on_a) + len(on_b) == CLIENTS, workers_of(clients)
    await round_of_messages(clients, "before")
    a.signal(signal.SIGHUP)
    # While A's workers are replaced, B's clients chat on.
    closes = asyncio.gather(*(closed_with(c) for c in on_a))
    await round_of_messages(on_b, "during")
    for err in await closes:
        assert err.rcvd and err.rcvd.code == 1012, err
        assert err.rcvd.reason == "server restarting", err.rcvd.reason
    old = {c.worker for c in on_a}
    back = await connect_all([a], len(on_a))
    assert not old & {c.worker for c in back}, "a client of A reconnected to a replaced worker"
    await round_of_messages(on_b + back, "after")
    # A stop: every client is told the server is going away.
    for chat in chats:
        chat.signal(signal.SIGTERM)
    for err in await asyncio.gather(*(closed_with(c) for c in on_b + back)):
        assert err.rcvd and err.rcvd.code == 1001, err


async def redis_down(chats, redis):
    """Redis down at the start, then up, then restarted: a line for each change, /visits 503
    then counting, and the clients chatting on throughout."""
    chat, = chats
    said = f"chat: primary: redis at {redis.address}: "
    chat.wait_for(said + r"unreachable \(Connection refused\); retrying with backoff")
    status, body = chat.get("/visits")
    assert status == 503, (status, body)
    clients = await connect_all(chats, 10)
    await round_of_messages(clients, "redis down")
    redis.start()
    chat.wait_for(r"Subscribed to redis")
    chat.wait_for(said + "connected")
    await round_of_messages(clients, "redis up")
    mark = len(chat.lines)
    redis.stop()
    chat.wait_for(said + r"unreachable", after=mark)
    await round_of_messages(clients, "redis gone again")
    mark = len(chat.lines)
    redis.start()
    chat.wait_for(said + "connected", after=mark)
    await round_of_messages(clients, "redis back")


async def browser(chats, redis):
    a, b = chats
    python = await connect(b.url)  # on the other instance: the page's message crosses Redis
    async with Chromium() as page:
        await page.open(f"http://{a.host}:{a.port}/")
        await page.until("document.getElementById('status').textContent === 'connected'")
        await python.ws.send("hello from python")
        await page.until("[...document.querySelectorAll('#log li')]"
                         ".some(li => li.textContent === 'hello from python')")
        await page.evaluate("document.getElementById('text').value = 'hello from chromium';"
                            "document.getElementById('say').requestSubmit(); true")
        await python.until("hello from chromium")
        await page.until("[...document.querySelectorAll('#log li')]"
                         ".some(li => li.textContent === 'hello from chromium')")


async def behind_nginx(chats, redis):
    """deploy/nginx/cluster.conf in front of both: the upgrade, the worker's header and a
    server's close pass through, and the clients reconnect through nginx."""
    a, b = chats
    with Nginx(chats) as nginx:
        clients = await connect_all([nginx], 40)
        on_a = [c for c in clients if c.worker.startswith(a.instance)]
        on_b = [c for c in clients if c.worker.startswith(b.instance)]
        assert on_a and on_b and len(on_a) + len(on_b) == len(clients), workers_of(clients)
        await round_of_messages(clients, "via nginx")
        a.signal(signal.SIGHUP)
        for err in await asyncio.gather(*(closed_with(c) for c in on_a)):
            assert err.rcvd and err.rcvd.code == 1012, err
        back = await connect_all([nginx], len(on_a))
        await round_of_messages(on_b + back, "via nginx, after")
        # Before nginx stops: its graceful stop waits for the connections it proxies.
        await asyncio.gather(*(c.ws.close() for c in on_b + back))


async def sticky_behind_nginx(chats, redis):
    """Both instances with --schedule sticky --sticky-key cookie:sid behind
    deploy/nginx/cluster.conf: each client keeps its host (nginx hashes its sid) and its worker
    (the primary peeks at its sid) however often it reconnects, the clients spread over every
    worker, and after A is reloaded its clients keep their new workers as they did the old."""
    a, _ = chats
    sids = [f"{i:04d}-{os.getpid()}" for i in range(40)]

    async def reconnect(url, rounds, before):
        for _ in range(rounds):
            again = await asyncio.gather(*(connect(url, sid) for sid in sids))
            moved = [(sid, w, c.worker) for sid, w, c in zip(sids, before, again) if c.worker != w]
            assert not moved, f"sid, worker before, worker now: {moved[:5]}"
            await asyncio.gather(*(c.ws.close() for c in again))

    with Nginx(chats) as nginx:
        clients = await asyncio.gather(*(connect(nginx.url, sid) for sid in sids))
        spread = workers_of(clients)
        assert len(spread) == 4, f"40 sids on {dict(spread)}: wanted every worker of both instances"
        await round_of_messages(clients, "sticky")
        first = [c.worker for c in clients]
        await reconnect(nginx.url, 3, first)

        on_a = [c for c in clients if c.worker.startswith(a.instance)]
        a.signal(signal.SIGHUP)
        for err in await asyncio.gather(*(closed_with(c) for c in on_a)):
            assert err.rcvd and err.rcvd.code == 1012, err
        await asyncio.gather(*(c.ws.close() for c in clients if c not in on_a))
        after = await asyncio.gather(*(connect(nginx.url, sid) for sid in sids))
        replaced = {c.worker for c in on_a}
        for sid, old, c in zip(sids, first, after):
            assert c.worker.split("/")[0] == old.split("/")[0], f"sid {sid} moved host: {old} -> {c.worker}"
            assert c.worker not in replaced, f"sid {sid} reached a replaced worker {c.worker}"
        await round_of_messages(after, "sticky, after the reload")
        await asyncio.gather(*(c.ws.close() for c in after))
        await reconnect(nginx.url, 2, [c.worker for c in after])


class Nginx:
    """scripts/nginx.sh: real nginx on 127.0.0.1, deploy/nginx/cluster.conf rendered for `chats`."""

    def __init__(self, chats):
        self.dir = tempfile.mkdtemp(prefix="cluster-nginx-")
        self.script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts", "nginx.sh")
        self.host, self.port = "127.0.0.1", free_loopback_port()
        backends = ",".join(f"{c.host}:{c.port}" for c in chats)
        subprocess.run([self.script, "start", self.dir, "--port", str(self.port), "--backends", backends],
                       check=True, timeout=DEADLINE, stdout=subprocess.DEVNULL)
        self.url = f"ws://{self.host}:{self.port}/ws"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        subprocess.run([self.script, "stop", self.dir], check=True, timeout=DEADLINE)
        shutil.rmtree(self.dir, ignore_errors=True)


class Chromium:
    """Headless Chromium driven over the DevTools protocol. As root it needs --no-sandbox."""

    def __init__(self):
        self.profile = tempfile.mkdtemp(prefix="cluster-chromium-")
        self.next_id = 0

    async def __aenter__(self):
        args = ["chromium", "--headless", "--disable-gpu", "--no-first-run", "--remote-debugging-port=0",
                f"--user-data-dir={self.profile}", "about:blank"]
        if os.geteuid() == 0:
            args.insert(1, "--no-sandbox")
        self.proc = await asyncio.create_subprocess_exec(*args, stdout=subprocess.DEVNULL,
                                                         stderr=subprocess.PIPE)
        url = None
        for _ in range(1000):
            line = (await asyncio.wait_for(self.proc.stderr.readline(), DEADLINE)).decode()
            if not line:
                break
            if m := re.search(r"DevTools listening on (ws://\S+)", line):
                url = m.group(1)
                break
        assert url, "chromium did not open its DevTools port"
        self.drain = asyncio.ensure_future(self.proc.stderr.read())  # its chatter, not to block it
        self.cdp = await websockets.connect(url, max_size=1 << 24)
        target = await self.call("Target.createTarget", url="about:blank")
        attached = await self.call("Target.attachToTarget", targetId=target["targetId"], flatten=True)
        self.session = attached["sessionId"]
        await self.call("Page.enable", session=self.session)
        return self

    async def __aexit__(self, *exc):
        await self.cdp.close()
        self.proc.terminate()
        await asyncio.wait_for(self.proc.wait(), DEADLINE)
        await self.drain
        shutil.rmtree(self.profile, ignore_errors=True)

    async def call(self, method, session=None, **params):
        """Sends a command; its result. Events on the way are kept for wait_event."""
        self.next_id += 1
        ask = {"id": self.next_id, "method": method, "params": params}
        if session:
            ask["sessionId"] = session
        await self.cdp.send(json.dumps(ask))
        for _ in range(10000):
            m = json.loads(await asyncio.wait_for(self.cdp.recv(), DEADLINE))
            if m.get("id") == self.next_id:
                assert "error" not in m, f"{method}: {m['error']}"
                return m["result"]
            if m.get("method") == "Page.loadEventFired":
                self.loaded = True
        raise AssertionError(f"no answer to {method}")

    async def open(self, url):
        self.loaded = False
        await self.call("Page.navigate", session=self.session, url=url)
        for _ in range(10000):
            if self.loaded:
                return
            m = json.loads(await asyncio.wait_for(self.cdp.recv(), DEADLINE))
            self.loaded = m.get("method") == "Page.loadEventFired"
        raise AssertionError(f"{url} never loaded")

    async def evaluate(self, expression):
        r = await self.call("Runtime.evaluate", session=self.session, expression=expression, awaitPromise=True,
                            returnByValue=True)
        assert "exceptionDetails" not in r, r["exceptionDetails"]
        return r["result"].get("value")

    async def until(self, condition):
        """Waits, on the page's own DOM changes, until `condition` (JavaScript) holds."""
        waited = await self.evaluate(f"""new Promise((resolve) => {{
            const holds = () => {condition};
            if (holds()) return resolve(true);
            const o = new MutationObserver(() => {{ if (holds()) {{ o.disconnect(); resolve(true); }} }});
            o.observe(document.body, {{childList: true, characterData: true, subtree: true}});
            setTimeout(() => resolve(false), {DEADLINE * 1000});
        }})""")
        assert waited is True, f"the page never had: {condition}"


CASES = {"fan_out": fan_out, "too_big": too_big, "visits": visits, "reload": reload, "browser": browser,
         "nginx": behind_nginx, "nginx_sticky": sticky_behind_nginx, "redis_down": redis_down,
         "slow_reader": slow_reader}
TOOLS = {"browser": ["chromium"], "nginx": ["nginx"], "nginx_sticky": ["nginx"]}
OPTIONS = {"nginx_sticky": ["--schedule", "sticky", "--sticky-key", "cookie:sid"]}


async def closing_clients(case):
    """Runs the case, then closes its clients: left open, they could not answer the servers'
    close frames once the loop has ended, and each server would wait close_timeout for them."""
    await case
    await asyncio.gather(*(c.ws.close() for c in Client.every))


def main():
    case, binary = sys.argv[1], sys.argv[2]
    run = CASES[case]
    for tool in ["redis-server"] + TOOLS.get(case, []):
        if not shutil.which(tool, path=os.environ.get("PATH", "") + ":/usr/sbin"):
            print(f"{case}: skipped, {tool} is not installed (scripts/install-deps.sh --test)")
            sys.exit(77)
    with RedisServer(start_now=case != "redis_down") as redis:
        chats = []
        try:
            if case == "redis_down":
                chats.append(Chat(binary, "127.0.0.1", redis, with_log=True))
            else:
                chats += [Chat(binary, host, redis, options=OPTIONS.get(case, ())) for host in ["127.0.0.1", "127.0.0.2"]]
            result = run(chats, redis)
            if asyncio.iscoroutine(result):
                asyncio.run(closing_clients(result))
            for chat in chats:
                chat.stop()
        finally:
            for chat in chats:
                chat.kill()
    print(f"{case}: ok")


if __name__ == "__main__":
    main()

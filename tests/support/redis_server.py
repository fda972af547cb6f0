"""support.redis_server: a real redis-server of the test's own on 127.0.0.1, on a port the
kernel picked, nothing saved; ready once it says so; stopped and started again on the same
port; stopped (and its directory removed) at the end.
The Python side of tests/support/redis_server.hpp."""
import shutil
import socket
import subprocess
import tempfile


def free_loopback_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    def __init__(self, start_now=True):
        self.port = free_loopback_port()
        self.address = f"127.0.0.1:{self.port}"
        self.dir = tempfile.mkdtemp(prefix="cluster-redis-")
        self.proc = None
        if start_now:
            self.start()

    def start(self):
        """Returns once it accepts connections; on the same port each time."""
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.dir, "--daemonize", "no"],
            stdout=subprocess.PIPE, text=True)
        for line in self.proc.stdout:  # ends at its exit, should it fail to start
            if "Ready to accept connections" in line:
                break
        else:
            self.stop()
            raise RuntimeError(f"redis-server did not start (exit code {self.proc.returncode})")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)
        if self.proc:
            self.proc.stdout.close()
        self.proc = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

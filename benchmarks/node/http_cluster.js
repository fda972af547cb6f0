// Node.js baseline for benchmarks/http_bench.sh: cluster + http with N workers (default 2)
// under Node's default scheduling (SCHED_RR: the primary accepts and hands each connection
// to a worker), answering every request with the same 13-byte body as examples/http_server.
// Usage: node http_cluster.js <port> [workers]
// Prints "Listening on http://127.0.0.1:<port>" once every worker listens. On SIGTERM or
// SIGINT it stops, and each worker prints, as http_server does,
// "worker <id> (pid <pid>): <C> connections, <R> requests".
const cluster = require('node:cluster');
const http = require('node:http');

const port = Number(process.argv[2]);
const workers = Number(process.argv[3] || 2);

if (cluster.isPrimary) {
  let listening = 0;
  cluster.on('listening', () => {
    if (++listening === workers) console.log(`Listening on http://127.0.0.1:${port}`);
  });
  for (let i = 0; i < workers; i++) cluster.fork();

  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    // Exit only once every worker has exited, so their counts are printed before the
    // benchmark reads them; a worker that does not go within 5 s is killed.
    let alive = Object.keys(cluster.workers).length;
    if (alive === 0) process.exit(0);
    cluster.on('exit', () => {
      if (--alive === 0) process.exit(0);
    });
    setTimeout(() => {
      for (const w of Object.values(cluster.workers)) w.process.kill('SIGKILL');
    }, 5000).unref();
    cluster.disconnect();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
} else {
  let connections = 0;
  let requests = 0;
  const server = http.createServer((req, res) => {
    ++requests;
    // Content-Length as nginx and http_server send it (without it Node chunks the body).
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': 13 });
    res.end('Hello, World!');
  });
  server.on('connection', () => ++connections);
  // Idle keep-alive connections stay open for the whole run, as nginx's and http_server's do.
  server.keepAliveTimeout = 600000;
  server.listen(port, '127.0.0.1');
  // The primary's SIGINT (Ctrl-C reaches the whole process group) stops the workers.
  process.on('SIGINT', () => {});
  // stdout is a pipe or a file here, written synchronously on Linux: safe in 'exit'.
  process.on('exit', () => {
    console.log(`worker ${cluster.worker.id} (pid ${process.pid}): ${connections} connections, ${requests} requests`);
  });
}

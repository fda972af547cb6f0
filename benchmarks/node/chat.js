// Node.js baseline for benchmarks/ws_bench.sh: the chat of examples/chat with cluster, ws and
// node-redis. GET /ws upgrades to a WebSocket; every text message a client sends reaches every
// client of every worker of every instance sharing the Redis server, the sender included,
// exactly once: a worker hands it to its primary (process.send), which sends it to each of its
// workers and publishes it on Redis tagged with its instance id; a primary passes on to its
// workers the messages other instances published. GET /visits counts visits in Redis (INCR).
// Usage: node chat.js [--host A] [--port P] [--workers N] [--redis HOST:PORT]
// (NODE_PATH=/usr/share/nodejs for Debian's node-ws and node-redis.) Prints
// "Listening on http://A:P" once every worker listens and the primary is subscribed.
// SIGTERM or SIGINT stops it.
const cluster = require('node:cluster');
const crypto = require('node:crypto');
const http = require('node:http');
const { parseArgs } = require('node:util');
const { WebSocketServer } = require('ws');
const { createClient } = require('redis');

const { values: args } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '8080' },
    workers: { type: 'string', default: '2' },
    redis: { type: 'string', default: '127.0.0.1:6379' },
  },
});
const workers = Number(args.workers);
const redisUrl = `redis://${args.redis}`;
const channel = 'chat';

async function primary() {
  const instance = crypto.randomUUID();
  const publisher = createClient({ url: redisUrl });
  const subscriber = publisher.duplicate();
  publisher.on('error', (err) => console.error('redis:', err.message));
  subscriber.on('error', (err) => console.error('redis:', err.message));
  await Promise.all([publisher.connect(), subscriber.connect()]);

  const broadcast = (text) => {
    for (const worker of Object.values(cluster.workers)) worker.send(text);
  };
  await subscriber.subscribe(channel, (message) => {
    const { from, text } = JSON.parse(message);
    if (from !== instance) broadcast(text);
  });
  cluster.on('message', (worker, text) => {
    broadcast(text);
    publisher.publish(channel, JSON.stringify({ from: instance, text }));
  });

  let listening = 0;
  cluster.on('listening', () => {
    if (++listening === workers) console.log(`Listening on http://${args.host}:${args.port}`);
  });
  for (let i = 0; i < workers; i++) cluster.fork();

  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    cluster.disconnect(async () => {
      await Promise.all([publisher.quit(), subscriber.quit()]);
      process.exit(0);
    });
    setTimeout(() => process.exit(1), 5000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

async function worker() {
  const redis = createClient({ url: redisUrl });
  redis.on('error', (err) => console.error('redis:', err.message));
  await redis.connect();

  const wss = new WebSocketServer({ noServer: true });
  wss.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => {
      if (!isBinary) process.send(data.toString());
    });
  });
  process.on('message', (text) => {
    for (const client of wss.clients) {
      if (client.readyState === client.OPEN) client.send(text);
    }
  });

  const server = http.createServer(async (req, res) => {
    if (req.method === 'GET' && req.url === '/visits') {
      const visits = await redis.incr('visits');
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.end(`${visits}\n`);
      return;
    }
    res.writeHead(404, { 'Content-Type': 'text/plain' });
    res.end('Not Found\n');
  });
  server.on('upgrade', (req, socket, head) => {
    if (req.url !== '/ws') {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  });
  server.listen(Number(args.port), args.host);

  // The primary's SIGINT (Ctrl-C reaches the whole group) stops the workers, through
  // cluster.disconnect(); the server and Redis are let go of then.
  process.on('SIGINT', () => {});
  cluster.worker.on('disconnect', () => {
    for (const client of wss.clients) client.terminate();
    server.close();
    redis.quit();
  });
}

(cluster.isPrimary ? primary() : worker()).catch((err) => {
  console.error(`chat: ${err.message}`);
  process.exit(1);
});

// Node.js cluster baseline for lifecycle_bench: from the first cluster.fork() until every
// worker is 'online' (2 and 16 workers), and from a worker's SIGKILL until the replacement
// forked on its 'exit' is 'online'. Prints p50s (and the crash p99) in ms as one JSON line.
// Repetitions are capped: a Node worker takes tens of milliseconds to come up.
const cluster = require('node:cluster');

const repeats = { online2: 10, online16: 3, kills: 100 };

const now = () => process.hrtime.bigint();
const msSince = (start) => Number(now() - start) / 1e6;

// Nearest rank, as lifecycle_bench computes it.
const percentile = (samples, q) => {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.max(Math.ceil(q * sorted.length), 1) - 1];
};
const median = (samples) => {
  const s = [...samples].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
};

const disconnectAll = () => new Promise((resolve) => cluster.disconnect(resolve));

// Forks n workers; resolves with the ms until the last is online.
const bringUp = (n) =>
  new Promise((resolve) => {
    const start = now();
    let online = 0;
    const onOnline = () => {
      if (++online < n) return;
      cluster.off('online', onOnline);
      resolve(msSince(start));
    };
    cluster.on('online', onOnline);
    for (let i = 0; i < n; i++) cluster.fork();
  });

async function onlineMs(n, reps) {
  const samples = [];
  for (let r = 0; r < reps; r++) {
    samples.push(await bringUp(n));
    await disconnectAll();
  }
  return samples;
}

// SIGKILL one worker; on its 'exit', fork a replacement; resolves when that one is online.
const crashCycle = () =>
  new Promise((resolve) => {
    const victim = Object.values(cluster.workers)[0];
    const start = now();
    cluster.once('exit', () => cluster.fork().once('online', () => resolve(msSince(start))));
    victim.process.kill('SIGKILL');
  });

async function main() {
  const online2 = await onlineMs(2, repeats.online2);
  const online16 = await onlineMs(16, repeats.online16);
  await bringUp(2);
  const crashes = [];
  for (let k = 0; k < repeats.kills; k++) crashes.push(await crashCycle());
  await disconnectAll();
  console.log(
    JSON.stringify({
      online_2_ms: median(online2),
      online_16_ms: median(online16),
      crash_p50_ms: median(crashes),
      crash_p99_ms: percentile(crashes, 0.99),
    }),
  );
}

// A worker stays up on its IPC channel until the primary disconnects it.
if (cluster.isPrimary) main();

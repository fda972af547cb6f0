// Node.js cluster baseline for ipc_bench: a worker sends N objects equivalent to the
// C++ `sample` with process.send; the primary counts them and prints messages/s as JSON.
const cluster = require('node:cluster');
const n = Number(process.argv[2] || 200000);

if (cluster.isPrimary) {
  const worker = cluster.fork();
  let count = 0;
  let start = 0n;
  worker.on('message', () => {
    if (count === 0) start = process.hrtime.bigint();
    if (++count === n) {
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      console.log(JSON.stringify({ messages_per_second: (n - 1) / seconds }));
      worker.kill();
    }
  });
} else {
  const msg = { id: 0, kind: 2, value: 3.5, name: 'sample-name1', v: [1, 2, 3, 4, 5, 6, 7] };
  let i = 0;
  // Batches with a turn of the event loop between them, so Node's queue drains as it goes.
  const pump = () => {
    for (let k = 0; k < 1000 && i < n; k++) {
      msg.id = i++;
      process.send(msg);
    }
    if (i < n) setImmediate(pump);
  };
  pump();
}

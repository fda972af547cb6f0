// Node.js worker_threads baseline for thread_bench: the main thread posts an object equivalent
// to the C++ `sample` to a worker thread, which posts it back; N round trips, after a warm-up,
// and the mean round trip printed in nanoseconds as JSON.
const { Worker, isMainThread, parentPort } = require('node:worker_threads');
const n = Number(process.argv[2] || 20000);
const warmup = 2000;

if (isMainThread) {
  const worker = new Worker(__filename, { argv: [String(n)] });
  const msg = { id: 0, kind: 2, value: 3.5, name: 'sample-name1', v: [1, 2, 3, 4, 5, 6, 7] };
  let i = 0;
  let start = 0n;
  worker.on('message', (back) => {
    if (++i === warmup) start = process.hrtime.bigint();
    if (i === warmup + n) {
      const ns = Number(process.hrtime.bigint() - start) / n;
      console.log(JSON.stringify({ round_trip_ns: ns }));
      worker.terminate();
      return;
    }
    msg.id = back.id + 1;
    worker.postMessage(msg);
  });
  worker.postMessage(msg);
} else {
  parentPort.on('message', (m) => parentPort.postMessage(m));
}

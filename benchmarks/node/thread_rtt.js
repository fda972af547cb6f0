// Node.js worker_threads baseline for thread_bench: an object equivalent to the C++ `sample`
// posted and posted back N times after a warm-up, the mean round trip printed in nanoseconds
// as JSON. `main`: between the main thread and a worker. `between`: between two workers, which
// talk through a MessageChannel of their own, the main thread out of the way.
const { Worker, MessageChannel, isMainThread, parentPort, workerData } = require('node:worker_threads');
const warmup = 2000;

function rally(port, n, done) {
  const msg = { id: 0, kind: 5, value: 3.5, name: 'sample-name1', v: [1, 2, 3, 4, 5, 6, 7] };
  let i = 0;
  let start = 0n;
  port.on('message', (back) => {
    if (++i === warmup) start = process.hrtime.bigint();
    if (i === warmup + n) return done(Number(process.hrtime.bigint() - start) / n);
    msg.id = back.id + 1;
    port.postMessage(msg);
  });
  port.postMessage(msg);
}

if (isMainThread) {
  const n = Number(process.argv[2] || 20000);
  const report = (ns) => console.log(JSON.stringify({ round_trip_ns: ns }));
  if (process.argv[3] === 'between') {
    const { port1, port2 } = new MessageChannel();
    const echo = new Worker(__filename, { workerData: { role: 'echo', port: port2 }, transferList: [port2] });
    const pinger = new Worker(__filename, { workerData: { role: 'ping', port: port1, n }, transferList: [port1] });
    pinger.on('message', (ns) => {
      report(ns);
      pinger.terminate();
      echo.terminate();
    });
  } else {
    const worker = new Worker(__filename, { workerData: { role: 'echo', port: null } });
    rally(worker, n, (ns) => {
      report(ns);
      worker.terminate();
    });
  }
} else {
  const port = workerData.port || parentPort;
  if (workerData.role === 'echo') port.on('message', (m) => port.postMessage(m));
  else rally(port, workerData.n, (ns) => parentPort.postMessage(ns));
}

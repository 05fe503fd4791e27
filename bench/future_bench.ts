/**
 * Benchmarks of settling futures, the path that the report of unretrieved
 * errors must not slow down: futures that succeed, futures that fail and
 * are looked at, against native promises.
 *
 * deno bench bench/future_bench.ts
 *
 * @module
 */

import { BaseEventLoop, Future } from "../mod.ts";

const N = 100_000;
const loop = new BaseEventLoop();

Deno.bench("Promise.withResolvers + resolve (100,000)", {
  group: "succeed",
  baseline: true,
}, () => {
  for (let i = 0; i < N; i++) {
    const { resolve } = Promise.withResolvers<number>();
    resolve(i);
  }
});

Deno.bench("Future + setResult + result (100,000)", {
  group: "succeed",
}, () => {
  let sum = 0;
  for (let i = 0; i < N; i++) {
    const fut = new Future<number>({ loop });
    fut.setResult(i);
    sum += fut.result();
  }
  if (sum < 0) throw new Error("unreachable");
});

const error = new Error("failed");

Deno.bench("Promise.withResolvers + reject + catch (100,000)", {
  group: "fail",
  baseline: true,
}, () => {
  for (let i = 0; i < N; i++) {
    const { promise, reject } = Promise.withResolvers<number>();
    promise.catch(() => {});
    reject(error);
  }
});

Deno.bench("Future + setException + exception (100,000)", {
  group: "fail",
}, () => {
  for (let i = 0; i < N; i++) {
    const fut = new Future<number>({ loop });
    fut.setException(error);
    if (fut.exception() !== error) throw new Error("unreachable");
  }
});

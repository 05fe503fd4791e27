/**
 * What a `Protocol`'s fresh read buffer costs: a new 64 KiB `Uint8Array`
 * written once, against refilling one reused buffer (what a raw Deno echo
 * or a `BufferedProtocol` does), and against 64 KiB views carved from a
 * fresh 4 MiB slab. A protocol that owns its bytes needs memory no one
 * else reuses, so the fresh-buffer figure is the floor under a large
 * `Protocol` read (bench/README.md, "The remaining hot-path gaps").
 *
 * deno bench bench/alloc_bench.ts
 *
 * @module
 */

const SIZE = 64 * 1024;
const SLAB = 4 * 1024 * 1024;
let sink = 0;

Deno.bench(
  "fresh 64 KiB buffer, filled",
  { group: "64k", baseline: true },
  () => {
    const b = new Uint8Array(SIZE);
    b.fill(1);
    sink += b[SIZE - 1];
  },
);

const reused = new Uint8Array(SIZE);
Deno.bench("reused 64 KiB buffer, refilled", { group: "64k" }, () => {
  reused.fill(1);
  sink += reused[SIZE - 1];
});

let slab = new Uint8Array(SLAB);
let at = 0;
Deno.bench(
  "64 KiB view of a fresh 4 MiB slab, filled",
  { group: "64k" },
  () => {
    if (at + SIZE > slab.length) {
      slab = new Uint8Array(SLAB);
      at = 0;
    }
    const b = slab.subarray(at, at += SIZE);
    b.fill(1);
    sink += b[SIZE - 1];
  },
);

globalThis.addEventListener("unload", () => {
  if (sink < 0) console.log(sink);
});

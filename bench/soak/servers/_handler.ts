/**
 * The HTTP handler of the soak suite, shared by tulip's server script
 * (`http.ts`) and the `Deno.serve` one (`deno_serve.ts`) so that both do
 * the same work per request. Routes:
 *
 * - `GET /` answers `Hello, World!`;
 * - `GET /big?bytes=N` answers N bytes;
 * - `GET /slow?ms=N` answers `slow` after N ms;
 * - any other method reads the whole body and answers its length.
 *
 * @module
 */

const BIG_MAX = 64 * 1024 * 1024;

let calls = 0;

/** How many requests the handler has been called with. */
export function handled(): number {
  return calls;
}

/** Answers one request (see the module's routes). */
export async function handle(request: Request): Promise<Response> {
  calls++;
  const url = new URL(request.url);
  if (request.method !== "GET" && request.method !== "HEAD") {
    const body = await request.arrayBuffer();
    return new Response(`${body.byteLength}`);
  }
  switch (url.pathname) {
    case "/big": {
      const bytes = Number(url.searchParams.get("bytes") ?? "1048576");
      return new Response(new Uint8Array(Math.min(bytes, BIG_MAX)).fill(120));
    }
    case "/slow": {
      const ms = Number(url.searchParams.get("ms") ?? "1000");
      await new Promise((resolve) => setTimeout(resolve, ms));
      return new Response("slow");
    }
    default:
      return new Response("Hello, World!");
  }
}

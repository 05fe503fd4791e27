/**
 * Deno's I/O, as the Deno event loop sees it: the one private file of
 * `transports/` that another folder (`loop/deno_event_loop.ts`, and only
 * it) may import.
 *
 * The proactor (`_proactor.ts`, `_deno_proactor.ts`), the concrete
 * transports it drives (streams, pipes, datagrams, subprocess pipes, TLS
 * upgrade) and the loop operations that make them (connections, servers,
 * raw socket calls, name lookup) are one family, so they live together
 * here, below the loop's public interface: futures → scheduler → proactor
 * → transports. The loop creates transports only through this entry, so
 * the folder's other private files stay private, and no `mod.ts`
 * re-exports it (concrete transports are private; callers see a
 * `Transport`).
 *
 * @module
 */

export { createDatagramEndpoint } from "./_deno_datagram.ts";
export { checkNameinfoArgs, nameinfo, resolveHost } from "./_deno_names.ts";
export { connectReadPipe, connectWritePipe } from "./_deno_pipes.ts";
export { DenoProactor, watchFuture } from "./_deno_proactor.ts";
export type { DenoIo } from "./_deno_proactor.ts";
export { DenoSockets } from "./_deno_sockets.ts";
export type { StreamContext } from "./_deno_stream_transport.ts";
export { openConnection, openServer } from "./_deno_streams.ts";
export { startTls } from "./_deno_start_tls.ts";
export { subprocessExec, subprocessShell } from "./_deno_subprocess.ts";

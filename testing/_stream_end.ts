/**
 * `StreamEnd`: what the in-memory stream transports (`transportPair`'s
 * ends, the simulator's `SimStream`) share — their end-of-life states and
 * the rules every public method reads from them.
 *
 * @module
 */

import type { Handle } from "../loop/handle.ts";
import type { SchedulingLoop } from "../loop/event_loop.ts";
import {
  deliverData,
  isBufferedProtocol,
  lentBuffer,
} from "../protocols/deliver_data.ts";
import { PeerLog } from "../protocols/peer_log.ts";
import type {
  BaseProtocol,
  BufferedProtocol,
  Protocol,
} from "../protocols/protocol.ts";
import {
  FlowControlledTransport,
  WriteFlowControl,
} from "../transports/flow_control.ts";
import {
  checkWriteData,
  gatherWriteData,
  refuseWrite,
} from "../transports/write_checks.ts";
import type { Transport } from "../transports/transport.ts";

// One end of an in-memory connection. Its write path has three states:
// open (writes are handed to `send()`); closing (close() or writeEof()
// called: no more writes, what was sent drains, then an end of stream
// follows, and after close() the end is lost); lost (connectionLost
// scheduled, exactly once: writes are dropped quietly until it runs, as
// asyncio does, and throw after). A subclass moves the bytes: it sends
// (`send`, `sendEof`), starts a close or an abort, delivers what arrives
// (`schedule`, then `feed` and `deliverEof`), and, once lost, drops what
// it holds and schedules the protocol's `connectionLost` (`dropped`).
export abstract class StreamEnd extends FlowControlledTransport
  implements Transport {
  protected readonly loop: SchedulingLoop;
  protected readonly flow: WriteFlowControl;
  protected reading = true;
  protected closeCalled = false;
  protected eofWritten = false;
  protected lost = false;
  protected lostNotified = false;
  protected delivery: Handle | null = null;
  // The buffer a buffered protocol lent for the next delivery (`portion`).
  #lent: Uint8Array | null = null;
  // Bytes handed to the protocol, what pays for the reports of its
  // failures (see PeerLog), and how many the log was told of; the log,
  // made on the first failure.
  #received = 0;
  #paid = 0;
  #log: PeerLog | null = null;

  constructor(loop: SchedulingLoop) {
    super();
    this.loop = loop;
    this.flow = new WriteFlowControl(loop, this);
  }

  protected override flowControl(): WriteFlowControl {
    return this.flow;
  }

  /** The class and end named in `toStringTag`. */
  protected abstract get label(): string;
  /** Sends `data`, which the end now owns. */
  protected abstract send(data: Uint8Array): void;
  /** Sends the end of the stream after what was sent. */
  protected abstract sendEof(): void;
  /** Drops what arrived and sends the end of the stream; lost once drained. */
  protected abstract startClose(): void;
  /** Breaks the connection at once. */
  protected abstract startAbort(): void;
  /** Schedules the next delivery, if there is one and the end reads. */
  protected abstract schedule(): void;
  /** Drops what the end holds once it is lost, and tells whoever must know. */
  protected abstract dropped(exc: Error | undefined): void;
  /** An error from the protocol: the connection breaks with it. */
  protected abstract broken(exc: Error): void;

  abstract getExtraInfo(name: string, defaultValue?: unknown): unknown;
  abstract getWriteBufferSize(): number;
  abstract getProtocol(): BaseProtocol;
  abstract setProtocol(protocol: BaseProtocol): void;

  get [Symbol.toStringTag](): string {
    const state = this.lost ? "closed" : this.closeCalled ? "closing" : "open";
    return `${this.label} ${state}`;
  }

  isClosing(): boolean {
    return this.closeCalled || this.lost;
  }

  pauseReading(): void {
    if (this.closeCalled || this.lost) return;
    this.reading = false;
  }

  resumeReading(): void {
    if (this.closeCalled || this.lost || this.reading) return;
    this.reading = true;
    this.schedule();
  }

  isReading(): boolean {
    return this.reading && !this.closeCalled && !this.lost;
  }

  write(data: Uint8Array): void {
    checkWriteData(data);
    if (!this.#checkWritable("write") || data.length === 0) return;
    this.#send(data.slice());
  }

  writelines(list: Iterable<Uint8Array>): void {
    const data = gatherWriteData(list);
    if (!this.#checkWritable("writelines") || data.length === 0) return;
    // One item comes back as the caller's own buffer: copy it, as write().
    this.#send(data.slice());
  }

  // Sends; a write the peer took whole drains at once, and no drain will
  // follow to ask a pull producer for more: the flow control asks it.
  #send(data: Uint8Array): void {
    const before = this.getWriteBufferSize();
    this.send(data);
    if (this.getWriteBufferSize() <= before) this.flow.sentAtOnce();
  }

  writeEof(): void {
    if (this.closeCalled || this.eofWritten) return;
    this.eofWritten = true;
    this.flow.endWrites();
    if (this.lost) return;
    this.sendEof();
  }

  canWriteEof(): boolean {
    return true;
  }

  close(): void {
    if (this.closeCalled) return;
    this.closeCalled = true;
    if (this.lost) return;
    this.reading = false;
    this.delivery?.cancel();
    this.delivery = null;
    // The producer stops; resumeWriting() still comes until connectionLost.
    this.flow.endWrites();
    this.startClose();
  }

  abort(): void {
    this.closeCalled = true;
    if (this.lost) return;
    this.startAbort();
  }

  /** Marks the end lost, once: it stops reading and writing. */
  protected lose(exc: Error | undefined): void {
    if (this.lost) return;
    this.lost = true;
    this.reading = false;
    this.delivery?.cancel();
    this.delivery = null;
    this.flow.close();
    this.dropped(exc);
  }

  /**
   * How many of the `n` bytes waiting the next delivery takes: all of them
   * for a `Protocol`; for a buffered protocol, what the buffer it lends now
   * holds, as one read into that buffer takes on a socket, so that a
   * `close()` or `pauseReading()` from `bufferUpdated()` holds back the
   * rest. -1 when `getBuffer()` failed (reported, and the end is lost).
   */
  protected portion(n: number): number {
    const protocol = this.getProtocol();
    if (!isBufferedProtocol(protocol)) return n;
    try {
      this.#lent = lentBuffer(protocol, n);
    } catch (e) {
      this.#fatal(e, "getBuffer");
      return -1;
    }
    return Math.min(n, this.#lent.length);
  }

  /**
   * Hands `data` (at most one `portion()`) to the protocol; `false` when
   * the protocol failed.
   */
  protected feed(data: Uint8Array): boolean {
    this.#received += data.length;
    const lent = this.#lent;
    this.#lent = null;
    if (lent === null) {
      return deliverData(this.getProtocol(), data, this.#failed);
    }
    lent.set(data);
    try {
      (this.getProtocol() as BufferedProtocol).bufferUpdated(data.length);
    } catch (e) {
      this.#fatal(e, "bufferUpdated");
      return false;
    }
    return true;
  }

  // Reports a failed protocol call under its name, as the TCP transport.
  #failed = (exception: unknown, call: string): void =>
    this.#fatal(exception, call);

  /**
   * Calls the protocol's `connectionMade`. One that throws is reported and
   * breaks the connection with its error, as a Deno transport does: the
   * result holds the error, for the future that made the connection.
   */
  protected connectionMade(): { failed: unknown } | undefined {
    try {
      (this.getProtocol() as Protocol).connectionMade(this);
    } catch (e) {
      this.#fatal(e, "connectionMade");
      return { failed: e };
    }
    return undefined;
  }

  /** Tells the protocol of the end of the stream; closes unless kept open. */
  protected deliverEof(): void {
    let keepOpen: boolean | void;
    try {
      keepOpen = (this.getProtocol() as Protocol).eofReceived?.();
    } catch (e) {
      return this.#fatal(e, "eofReceived");
    }
    if (!keepOpen) this.close();
  }

  /**
   * Tells the protocol its connection is lost, the last call this end
   * makes to it; what it throws goes to the loop's exception handler with
   * this end and the protocol, as a Deno transport reports it.
   */
  protected notifyLost(exc: Error | undefined): void {
    this.lostNotified = true;
    const protocol = this.getProtocol();
    try {
      protocol.connectionLost(exc);
    } catch (exception) {
      this.#report(
        exception,
        "Exception in protocol.connectionLost()",
        "connectionLost() failures",
      );
    }
    this.#log?.close("Connection", { transport: this });
  }

  #fatal(exception: unknown, method: string): void {
    this.#report(
      exception,
      `Fatal error: protocol.${method}() call failed`,
      "fatal errors",
    );
    this.closeCalled = true;
    this.broken(
      exception instanceof Error ? exception : new Error(String(exception)),
    );
  }

  // Reports a failure of the protocol's, paid for by what the peer sent,
  // as a Deno transport reports it.
  #report(exception: unknown, message: string, kind: string): void {
    const log = this.#log ??= new PeerLog({ loop: this.loop });
    log.received(this.#received - this.#paid);
    this.#paid = this.#received;
    log.report(kind, {
      message,
      exception,
      transport: this,
      protocol: this.getProtocol(),
    });
  }

  // Returns whether to send; false to drop the data quietly.
  #checkWritable(what: string): boolean {
    if (this.eofWritten || this.closeCalled || this.lostNotified) {
      refuseWrite(what, this.eofWritten);
    }
    // Lost (a reset) but the protocol was not told yet: drop quietly.
    return !this.lost;
  }
}

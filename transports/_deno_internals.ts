/**
 * Every probe of Deno's private internals, in one place.
 *
 * A few fast paths need what Deno keeps out of its public API: the `core`
 * read and write ops under `Deno.Conn` (the proactor), the symbol under
 * which a connection keeps its resource id, the fields inside a `Request`
 * or `Response` that hold a body made from a string or bytes (the HTTP
 * protocols), the URL list behind a `Response`'s `url` (the HTTP client),
 * and the key by which Deno's own code reads a request's
 * signal (the lazy request). None of them is promised to last, so:
 *
 * - **One module.** Only this file looks for them. Each probe is made
 *   once, checks that what it found behaves as expected on a sample (a
 *   `Response` it makes, a connection it is shown), and gives either the
 *   found value or `null`; the code that uses it takes its general,
 *   public-API path on `null`: slower, never wrong. Besides `futures/_runtime.ts`, it is the one private
 *   file every other folder may import (`tests/style_test.ts` enforces
 *   it), because the fast paths live in `transports/` and `http/` and the
 *   probes must not be spread between them.
 * - **Switchable off.** With the environment variable `TULIP_NO_INTERNALS`
 *   set (to anything but `""` or `"0"`), every probe reports "not
 *   available" and only the public-API paths run. The variable is read
 *   once, at load time, and only when env access to it is already
 *   granted: without the permission it counts as not set, and Deno never
 *   prompts.
 * - **Loud when they stop matching.** {@linkcode probeInternals} reports
 *   each probe as found or not, and `tests/transports/_deno_internals_test.ts`
 *   fails when any is not found on the pinned Deno (or, with the switch
 *   on, when any is found). The test task runs the whole suite a second
 *   time with the switch on, so the general paths stay tested.
 *
 * @module
 */

/** The environment variable that switches every probe off. */
export const NO_INTERNALS_ENV = "TULIP_NO_INTERNALS";

/** Reads the switch without ever prompting for permission. */
function readSwitch(): boolean {
  try {
    const status = Deno.permissions.querySync({
      name: "env",
      variable: NO_INTERNALS_ENV,
    });
    if (status.state !== "granted") return false;
    const value = Deno.env.get(NO_INTERNALS_ENV);
    return value !== undefined && value !== "" && value !== "0";
  } catch {
    // A host without permission queries: the variable cannot be read.
    return false;
  }
}

/**
 * Whether the probes may look at Deno's internals: `false` when
 * `TULIP_NO_INTERNALS` is set.
 */
export const INTERNALS_ENABLED: boolean = !readSwitch();

/** A symbol-keyed field of a Deno object. */
type Fields = Record<symbol, unknown>;

function findSymbol(object: object, description: string): symbol | null {
  for (const s of Object.getOwnPropertySymbols(object)) {
    if (s.description === description) return s;
  }
  return null;
}

// ---------------------------------------------------------------------------
// Core ops (the proactor)

/**
 * The part of Deno's internal `core` that the proactor uses: the read and
 * write ops under `Deno.Conn`'s `read()` and `write()`, and the calls that
 * make an op's promise keep the process alive or not. `Conn.read()` is an
 * async function around `core.read()` that also files the promise in a set
 * (for `unref()`) and maps 0 to `null`; calling the op directly saves a
 * promise, an async frame and two set operations per read.
 */
export interface CoreOps {
  /** Reads into `buffer`; resolves with the count, 0 at EOF. */
  read(rid: number, buffer: Uint8Array): Promise<number>;
  /** Writes `data`; resolves with the count written. */
  write(rid: number, data: Uint8Array): Promise<number>;
  /** Makes `promise` keep the process alive again. */
  refOpPromise(promise: Promise<unknown>): void;
  /** Lets the process exit while only `promise` is pending. */
  unrefOpPromise(promise: Promise<unknown>): void;
}

function findCore(): CoreOps | null {
  const key = (Deno as unknown as { internal?: unknown }).internal;
  if (typeof key !== "symbol") return null;
  const holder = (Deno as unknown as Fields)[key] as
    | { core?: Partial<CoreOps> }
    | undefined;
  const core = holder?.core;
  if (
    typeof core?.read !== "function" || typeof core.write !== "function" ||
    typeof core.refOpPromise !== "function" ||
    typeof core.unrefOpPromise !== "function"
  ) return null;
  return core as CoreOps;
}

/** Deno's `core` ops, or `null` when not found or switched off. */
export const CORE_OPS: CoreOps | null = INTERNALS_ENABLED ? findCore() : null;

// The two below are facts about the Deno runtime, the same for every loop,
// learnt from the first connection seen (none exists at load time); not
// per-loop state.
/** The symbol under which a `Deno.Conn` keeps its resource id, once seen. */
let ridKey: symbol | undefined = undefined;
/** `Deno.Conn`'s own `read()`, which the ops stand in for. */
let connRead: unknown = undefined;

/**
 * The resource id of `conn` when its ops may be called directly: a
 * connection made by Deno (TCP, TLS or Unix) whose `read()` is `Conn`'s
 * own, while {@linkcode CORE_OPS} is found; `undefined` otherwise. The
 * symbol is looked for on the first connection seen.
 *
 * @param conn The connection.
 * @returns The resource id, or `undefined`.
 */
export function connRid(conn: Deno.Conn): number | undefined {
  if (ridKey === undefined) {
    if (CORE_OPS === null) return undefined;
    const key = findSymbol(conn, "Deno.internal.rid");
    let proto = Object.getPrototypeOf(conn);
    while (proto !== null && !Object.hasOwn(proto, "read")) {
      proto = Object.getPrototypeOf(proto);
    }
    if (key === null || proto?.constructor?.name !== "Conn") return undefined;
    ridKey = key;
    connRead = proto.read;
  }
  if (conn.read !== connRead) return undefined;
  const rid = (conn as unknown as Fields)[ridKey];
  return typeof rid === "number" ? rid : undefined;
}

/** The symbol under which Deno's streams over a resource keep it, once seen. */
let backingKey: symbol | undefined = undefined;

/**
 * The resource id under `writable` when its writes may go to the write op
 * directly: a stream Deno made over a resource (a child's stdin,
 * `Deno.stdout.writable`, a file's `writable`), whose sink writes all of
 * each chunk to the resource and closes it on `close()` and `abort()` when
 * it owns it, while {@linkcode CORE_OPS} is found; `undefined` otherwise.
 * The symbol is looked for on the first such stream seen.
 *
 * @param writable The stream.
 * @returns The resource id, or `undefined`.
 */
export function writableRid(writable: WritableStream): number | undefined {
  if (CORE_OPS === null) return undefined;
  const key = backingKey ?? findSymbol(writable, "[[resourceBacking]]");
  if (key === null) return undefined;
  const backing = (writable as unknown as Fields)[key] as
    | { rid?: unknown; autoClose?: unknown }
    | undefined;
  if (
    typeof backing?.rid !== "number" || typeof backing.autoClose !== "boolean"
  ) return undefined;
  backingKey = key;
  return backing.rid;
}

// ---------------------------------------------------------------------------
// Request and Response bodies (the HTTP protocols)

const sampleResponse = new Response("");
const sampleRequest = new Request("http://localhost/");

/** Where Deno keeps what it knows about a request's or response's body. */
export interface BodyFields {
  /** `Response` → its inner response, whose `body` is an `InnerBody`. */
  readonly response: symbol;
  /** `Request` → its inner request, whose `body` is an `InnerBody`. */
  readonly request: symbol;
}

/** The body the probe checks, given to every sample made. */
const SAMPLE_TEXT = "ab";

/** What Deno keeps about a body (`InnerBody`), as far as the probe cares. */
interface InnerBody {
  /** `{ body, consumed }` for a body in memory, else a stream. */
  streamOrStatic?: { body?: unknown; consumed?: unknown };
  /** The length in bytes when known (a `Blob`'s size), else `null`. */
  length?: unknown;
}

function innerBody(message: object, key: symbol): InnerBody | undefined {
  const inner = (message as Fields)[key] as { body?: InnerBody } | undefined;
  return inner?.body ?? undefined;
}

function findBodyFields(): BodyFields | null {
  const response = findSymbol(sampleResponse, "response");
  const request = findSymbol(sampleRequest, "request");
  if (response === null || request === null) return null;
  const text = new Response(SAMPLE_TEXT, { status: 201 });
  text.headers; // Settles the lazy form, as the protocols do.
  const posted = new Request("http://localhost/", {
    method: "POST",
    body: SAMPLE_TEXT,
  });
  const blob = new Response(new Blob([SAMPLE_TEXT]));
  const inMemory = (inner: InnerBody | undefined) =>
    inner?.streamOrStatic?.body === SAMPLE_TEXT &&
    inner.streamOrStatic.consumed === false;
  return inMemory(innerBody(text, response)) &&
      inMemory(innerBody(posted, request)) &&
      innerBody(blob, response)?.length === SAMPLE_TEXT.length
    ? { response, request }
    : null;
}

/**
 * The symbols of a request's and a response's inner body, or `null` when
 * not found or switched off.
 */
export const BODY_FIELDS: BodyFields | null = INTERNALS_ENABLED
  ? findBodyFields()
  : null;

function findResponseUrlList(): symbol | null {
  const key = findSymbol(sampleResponse, "response");
  if (key === null) return null;
  const sample = new Response(null);
  const inner = (sample as unknown as Fields)[key] as
    | { urlList?: unknown }
    | undefined;
  if (!Array.isArray(inner?.urlList) || inner.urlList.length !== 0) {
    return null;
  }
  // The one probe that writes inside Deno: a list that refuses it (frozen,
  // a copy behind a getter that throws) means "not found", not a module
  // that fails to load.
  try {
    inner.urlList.push("http://localhost/p#f");
    return sample.url === "http://localhost/p" &&
        sample.clone().url === sample.url
      ? key
      : null;
  } catch {
    return null;
  }
}

/**
 * The symbol of a response's inner response, whose `urlList` gives its
 * `url` (for `clone()` too), or `null` when not found or switched off.
 */
export const RESPONSE_URL_LIST: symbol | null = INTERNALS_ENABLED
  ? findResponseUrlList()
  : null;

function findLazyBody(): symbol | null {
  const key = findSymbol(sampleResponse, "lazy static body");
  if (key === null) return null;
  const text = new Response(SAMPLE_TEXT);
  return (text as unknown as Fields)[key] === SAMPLE_TEXT ? key : null;
}

/**
 * The field in which a `Response` made from a string keeps it until its
 * headers or body are first used (a string there means "not read"), or
 * `null` when not found or switched off.
 */
export const LAZY_BODY: symbol | null = INTERNALS_ENABLED
  ? findLazyBody()
  : null;

/**
 * The fields `Deno.serve` reads to answer a plain response without
 * looking at its headers.
 */
export interface ServeFastFields {
  /** The status; 200 for the responses the server may answer fast. */
  readonly status: symbol;
  /** The string or bytes body, or something else for a stream. */
  readonly body: symbol;
  /** 1: the default text type; 2: the content type in `type`; else other. */
  readonly kind: symbol;
  /** The content type when `kind` is 2. */
  readonly type: symbol;
}

function findServeFast(): ServeFastFields | null {
  const status = findSymbol(sampleResponse, "serve fast status");
  const body = findSymbol(sampleResponse, "serve fast body");
  const kind = findSymbol(sampleResponse, "serve fast header kind");
  const type = findSymbol(sampleResponse, "serve fast content type");
  if (status === null || body === null || kind === null || type === null) {
    return null;
  }
  const text = new Response(SAMPLE_TEXT) as unknown as Fields;
  const json = Response.json(SAMPLE_TEXT) as unknown as Fields;
  return text[status] === 200 && text[body] === SAMPLE_TEXT &&
      text[kind] === 1 && json[kind] === 2 &&
      json[type] === "application/json"
    ? { status, body, kind, type }
    : null;
}

/**
 * The fields `Deno.serve` answers plain responses from, or `null` when
 * not found or switched off.
 */
export const SERVE_FAST: ServeFastFields | null = INTERNALS_ENABLED
  ? findServeFast()
  : null;

function findRequestSignalKey(): symbol | null {
  const key = findSymbol(Request.prototype, "signal");
  if (key === null) return null;
  const getter = Object.getOwnPropertyDescriptor(Request.prototype, key)?.get;
  const controller = new AbortController();
  const request = new Request("http://localhost/", {
    signal: controller.signal,
  });
  return typeof getter === "function" &&
      (request as unknown as Fields)[key] === request.signal &&
      (sampleRequest as unknown as Fields)[key] === sampleRequest.signal
    ? key
    : null;
}

/**
 * The key of the getter on `Request.prototype` through which Deno's own
 * code reads a request's signal (`clone()`, and `new Request(request)`,
 * which `fetch(request)` uses), or `null` when not found or switched off.
 */
export const REQUEST_SIGNAL_KEY: symbol | null = INTERNALS_ENABLED
  ? findRequestSignalKey()
  : null;

// ---------------------------------------------------------------------------
// node:timers (the simulator)

/**
 * Node's `Timeout` as Deno's `node:timers` makes it: the prototype
 * methods through which a timeout arms and stops its timer, and the field
 * telling whether it keeps the process alive.
 */
export interface NodeTimerFields {
  /** `Timeout.prototype`, shared by every `node:timers` timeout. */
  readonly timeout: object;
  /** The method that arms a timeout's timer and returns its id. */
  readonly createTimer: symbol;
  /** The method that stops a timeout for good (`clearTimeout()` calls it). */
  readonly destroy: symbol;
  /** A timeout's own field: whether it keeps the process alive. */
  readonly refed: symbol;
}

function findNodeTimers(): NodeTimerFields | null {
  try {
    const sample = setTimeout(() => {}, 2 ** 31 - 1) as unknown;
    if (typeof sample !== "object" || sample === null) return null;
    try {
      const timeout = Object.getPrototypeOf(sample) as Fields;
      const createTimer = findSymbol(timeout, "createTimer");
      const destroy = findSymbol(timeout, "destroy");
      const refed = findSymbol(sample, "refed");
      if (
        createTimer === null || destroy === null || refed === null ||
        typeof timeout[createTimer] !== "function" ||
        typeof timeout[destroy] !== "function" ||
        (sample as Fields)[refed] !== true ||
        typeof (sample as { _onTimeout?: unknown })._onTimeout !== "function"
      ) {
        return null;
      }
      return { timeout, createTimer, destroy, refed };
    } finally {
      clearTimeout(sample as never);
    }
  } catch {
    return null;
  }
}

/**
 * How `node:timers` arms its timers, or `null` when not found or switched
 * off (then a simulated host's `node:timers` timers are real ones).
 */
export const NODE_TIMERS: NodeTimerFields | null = INTERNALS_ENABLED
  ? findNodeTimers()
  : null;

/**
 * What the simulator needs to run a simulated host's `node:timers`
 * `setImmediate()` (the same function as the global one, so that a name
 * imported from the module escapes the run's replacement of the global) on
 * the host's loop: the `Immediate` prototype (its constructor calls its
 * `ref()` right before queueing it), the field that says whether it keeps
 * the process alive, and the queue it is in, from which the run takes it
 * so that the machine's check phase never runs it.
 */
export interface NodeImmediateFields {
  /** `Immediate.prototype`, shared by every `node:timers` immediate. */
  readonly immediate: object;
  /** An immediate's own field: whether it keeps the process alive. */
  readonly refed: symbol;
  /** Takes an immediate out of the queue, leaving its count as it is. */
  unqueue(immediate: object): void;
  /**
   * Clears an immediate as `clearImmediate()` does: uncounts it, marks it
   * `_destroyed`, drops its callback and unqueues it.
   */
  clear(immediate: object): void;
}

function findNodeImmediates(): NodeImmediateFields | null {
  try {
    const key = (Deno as unknown as { internal?: unknown }).internal;
    if (typeof key !== "symbol") return null;
    const core = ((Deno as unknown as Fields)[key] as {
      core?: {
        immediateQueue?: {
          head?: unknown;
          tail?: unknown;
          remove?: (i: object) => void;
        };
        clearImmediate?: (i: object) => void;
      };
    } | undefined)?.core;
    const queue = core?.immediateQueue;
    const clear = core?.clearImmediate;
    if (typeof queue?.remove !== "function" || typeof clear !== "function") {
      return null;
    }
    const sample = setImmediate(() => {}) as unknown as Fields & {
      _onImmediate?: unknown;
      _destroyed?: unknown;
    };
    try {
      const immediate = Object.getPrototypeOf(sample) as Fields;
      const refed = findSymbol(sample, "refed");
      const destroyed = Object.getOwnPropertyDescriptor(sample, "_destroyed");
      if (
        refed === null || sample[refed] !== true || queue.tail !== sample ||
        typeof sample._onImmediate !== "function" ||
        destroyed?.value !== false || destroyed.configurable !== true ||
        !["ref", "unref", "hasRef"].every((m) =>
          typeof (immediate as Record<string, unknown>)[m] === "function"
        )
      ) {
        return null;
      }
      return {
        immediate,
        refed,
        unqueue: (i) => queue.remove!.call(queue, i),
        clear: (i) => clear.call(core, i),
      };
    } finally {
      clearImmediate(sample as never);
    }
  } catch {
    return null;
  }
}

/**
 * How `node:timers` queues its immediates, or `null` when not found or
 * switched off (then a simulated host's `node:timers` immediate fails the
 * run).
 */
export const NODE_IMMEDIATES: NodeImmediateFields | null = INTERNALS_ENABLED
  ? findNodeImmediates()
  : null;

// ---------------------------------------------------------------------------
// The report

/** One probe's outcome. */
export interface ProbeResult {
  /** What was looked for. */
  readonly name: string;
  /** Whether it was found and behaved as expected on a sample. */
  readonly found: boolean;
  /** The fast path that is lost without it. */
  readonly usedBy: string;
}

/**
 * Reports every probe: found, or not (not found, or switched off).
 *
 * @param conn A connection made by Deno (`Deno.connect()` or a
 * listener's `accept()`), on which the resource-id probe is made; without
 * one, that probe reports whether a connection was seen and matched.
 * @returns One result per probe.
 */
export function probeInternals(conn?: Deno.Conn): ProbeResult[] {
  const rid = conn === undefined
    ? ridKey !== undefined
    : connRid(conn) !== undefined;
  return [
    {
      name: "core ops (read, write, refOpPromise, unrefOpPromise)",
      found: CORE_OPS !== null,
      usedBy: "loop/_deno_proactor.ts: reads and writes call the ops",
    },
    {
      name: "Deno.Conn resource id symbol",
      found: rid,
      usedBy: "loop/_deno_proactor.ts: reads and writes call the ops",
    },
    {
      name: "WritableStream resource backing",
      found: writableRid(Deno.stdout.writable) !== undefined,
      usedBy:
        "transports/_deno_pipes.ts: pipe writes call the op, which a closed loop unrefs",
    },
    {
      name: "Request/Response inner body fields",
      found: BODY_FIELDS !== null,
      usedBy: "http/_deno_body.ts: Content-Length bodies without a stream",
    },
    {
      name: "Response lazy static body",
      found: LAZY_BODY !== null,
      usedBy: "http/_deno_body.ts: string bodies read without settling",
    },
    {
      name: "Response serve-fast fields",
      found: SERVE_FAST !== null,
      usedBy: "http/_fast_response.ts: plain 200 answers in one write",
    },
    {
      name: "Response URL list",
      found: RESPONSE_URL_LIST !== null,
      usedBy: "http/_deno_body.ts: a client response's url, kept by clone()",
    },
    {
      name: "Request signal key",
      found: REQUEST_SIGNAL_KEY !== null,
      usedBy: "http/_http_request.ts: lazy requests made without a signal",
    },
    {
      name: "node:timers Timeout",
      found: NODE_TIMERS !== null,
      usedBy:
        "testing/_deno_sim_guard.ts: a simulated host's node:timers timers on its loop",
    },
    {
      name: "node:timers Immediate and its queue",
      found: NODE_IMMEDIATES !== null,
      usedBy:
        "testing/_deno_sim_guard.ts: a simulated host's node:timers immediates on its loop",
    },
  ];
}

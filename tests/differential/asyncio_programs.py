"""Random programs of asyncio tasks, and what asyncio 3.13 makes of them.

The Python half of tulip's differential check against asyncio (see
README.md here): `gen(seed)` makes a program (tasks of nested blocks:
marks, futures, sleeps, cancel()/uncancel()/cancelling(), try blocks,
timeout scopes, wait_for, timeout-run, gather, shield, TaskGroup; futures
set, failed or cancelled and tasks cancelled by a driver callback at
counted loop iterations), and `run_prog(program)` runs it on asyncio with
a virtual clock, returning its trace.

    python3.13 asyncio_programs.py START COUNT

prints one JSON line per seed: {"seed", "program", "trace"}.
"""
import asyncio
import json
import random
import sys
from asyncio import CancelledError

class Gen:
    def __init__(self, rnd):
        self.r = rnd; self.nid = 0; self.nt = 0; self.childs = []
        self.dcount = 0
    def uniq_d(self, zero_ok=True):
        self.dcount += 1
        if zero_ok and self.r.random() < 0.3: return 0
        return self.r.randint(1, 3) + self.dcount / 64.0
    def mark(self):
        self.nid += 1; return ["mark", self.nid]
    def target(self, depth, allow_c):
        k = self.r.random()
        if k < 0.45: return ["f", self.r.randrange(self.nf)]
        if k < 0.85 or not allow_c:
            self.nt += 1; lab = "c%d" % self.nt; self.childs.append(lab)
            return ["t", lab, self.block(depth + 1)]
        return ["c", self.block(depth + 1)]
    def step(self, depth):
        r = self.r
        opts = ["mark", "fut", "sleep0", "uncancel", "cancelling", "sleep"]
        if depth < 3:
            opts += ["nest", "try", "try", "try", "timeout", "timeout", "waitfor", "trun", "gather", "shield", "tg"]
        o = r.choice(opts)
        if o == "mark": return self.mark()
        if o == "fut": return ["fut", r.randrange(self.nf)]
        if o == "sleep0": return ["sleep0"]
        if o == "sleep": return ["sleep", self.uniq_d(False)]
        if o == "uncancel": return ["uncancel"]
        if o == "cancelling": return ["cancelling"]
        if o == "nest": return ["nest", self.block(depth + 1)]
        if o == "try": return ["try", r.choice(["cre", "csw", "esw"]), self.block(depth + 1)]
        if o == "timeout": return ["timeout", self.uniq_d(), self.block(depth + 1)]
        if o == "waitfor":
            d = self.uniq_d(False) if r.random() < 0.8 else 0
            return ["waitfor", d, self.target(depth, True)]
        if o == "trun":
            return ["trun", self.uniq_d(), self.target(depth, True)]
        if o == "gather":
            return ["gather", [self.target(depth, False) for _ in range(r.randint(1, 3))], r.random() < 0.4]
        if o == "shield": return ["shield", self.target(depth, True)]
        if o == "tg":
            kids = []
            for _ in range(r.randint(1, 3)):
                self.nt += 1; lab = "c%d" % self.nt; self.childs.append(lab)
                kids.append([lab, self.block(depth + 1)])
            return ["tg", kids, self.block(depth + 1)]
    def block(self, depth):
        n = self.r.randint(1, 4 if depth == 0 else 3)
        b = [self.mark()]
        for _ in range(n): b.append(self.step(depth))
        b.append(self.mark())
        return b

def gen(seed):
    r = random.Random(seed)
    g = Gen(r)
    g.nf = r.randint(1, 4)
    ntasks = r.randint(1, 3)
    tasks = [g.block(0) for _ in range(ntasks)]
    K = r.randint(2, 12)
    sched = []
    for j in range(g.nf):
        kind = r.choice(["set", "set", "exc", "fcancel"])
        sched.append([r.randint(0, K), kind, j, "v%d" % r.randint(0, 9)])
    labels = ["t%d" % i for i in range(ntasks)] + g.childs
    for _ in range(r.randint(1, 4)):
        it = r.randint(0, K)
        lab = r.choice(labels)
        msg = r.choice([None, "m%d" % r.randint(0, 9)])
        sched.append([it, "cancel", lab, msg])
        if r.random() < 0.25:
            sched.append([it if r.random() < 0.5 else min(K, it + 1), "cancel", lab, r.choice([None, "n%d" % r.randint(0, 9)])])
    if r.random() < 0.3:
        # late cancels, in virtual-time phase
        sched.append([K, "cancel", r.choice(labels), "late"])
    sched.sort(key=lambda a: a[0])  # stable
    style = r.choice(["async", "gen", "mixed"])
    return {"seed": seed, "nf": g.nf, "tasks": tasks, "K": K, "sched": sched, "style": style}


from asyncio import CancelledError

class Deadlock(Exception): pass

class FakeSel:
    def __init__(self, real, loop):
        self.real = real; self.loop = loop
    def select(self, timeout=None):
        if timeout is None:
            raise Deadlock()
        if timeout > 0:
            self.loop._vt += timeout
        return self.real.select(0)
    def __getattr__(self, n): return getattr(self.real, n)

class VLoop(asyncio.SelectorEventLoop):
    def __init__(self):
        super().__init__()
        self._vt = 0.0
        self._selector = FakeSel(self._selector, self)
    def time(self): return self._vt

def desc(e):
    if isinstance(e, CancelledError): return "Cancelled(%s)" % (e.args[0] if e.args and e.args[0] is not None else "")
    if isinstance(e, TimeoutError): return "Timeout"
    if isinstance(e, BaseExceptionGroup): return "EG[" + ",".join(sorted(desc(x) for x in e.exceptions)) + "]"
    if isinstance(e, ValueError): return "Value(%s)" % e.args[0]
    return "Other(%s:%s)" % (type(e).__name__, e)

class OrderedSet(dict):
    def add(self, x): self[x] = None
    def discard(self, x): self.pop(x, None)
    def remove(self, x): del self[x]

_tg_init = asyncio.TaskGroup.__init__
def _tg_init2(self, *a, **k):
    _tg_init(self, *a, **k)
    self._tasks = OrderedSet()
asyncio.TaskGroup.__init__ = _tg_init2

def run_prog(p):
    loop = VLoop()
    loop.set_exception_handler(lambda l, c: None)
    asyncio.set_event_loop(loop)
    tr = []
    futs = [loop.create_future() for _ in range(p["nf"])]
    tasks = {}
    def ev(lab, s): tr.append("%s:%s" % (lab, s))
    def fmt_val(v):
        if isinstance(v, list): return "[" + ",".join(fmt_val(x) for x in v) + "]"
        if isinstance(v, BaseException): return desc(v)
        return str(v)
    def mk_target(lab, t):
        if t[0] == "f": return futs[t[1]]
        if t[0] == "t":
            tk = loop.create_task(block(t[1], t[2])); tasks[t[1]] = tk; return tk
        return block(lab, t[1])
    async def block(lab, b):
        for s in b:
            await step(lab, s)
        return None
    async def step(lab, s):
        k = s[0]
        if k == "mark": ev(lab, "m%d" % s[1])
        elif k == "fut": v = await futs[s[1]]; ev(lab, "f%d=%s" % (s[1], v))
        elif k == "sleep0": await asyncio.sleep(0)
        elif k == "sleep": await asyncio.sleep(s[1])
        elif k == "uncancel": ev(lab, "unc=%d" % asyncio.current_task().uncancel())
        elif k == "cancelling": ev(lab, "cing=%d" % asyncio.current_task().cancelling())
        elif k == "nest": await block(lab, s[1])
        elif k == "try":
            kind = s[1]
            if kind == "esw":
                try: await block(lab, s[2])
                except Exception as e: ev(lab, "esw " + desc(e))
            else:
                try: await block(lab, s[2])
                except CancelledError as e:
                    ev(lab, kind + " " + desc(e))
                    if kind == "cre": raise
        elif k == "timeout":
            try:
                async with asyncio.timeout(s[1]):
                    await block(lab, s[2])
            except BaseException as e:
                ev(lab, "tmo-out " + desc(e)); raise
        elif k == "trun":
            aw = mk_target(lab, s[2])
            async with asyncio.timeout(s[1]):
                v = await aw
            ev(lab, "wf=%s" % fmt_val(v))
        elif k == "waitfor":
            v = await asyncio.wait_for(mk_target(lab, s[2]), s[1]); ev(lab, "wf=%s" % fmt_val(v))
        elif k == "gather":
            aws = [mk_target(lab, t) for t in s[1]]
            v = await asyncio.gather(*aws, return_exceptions=s[2]); ev(lab, "g=%s" % fmt_val(v))
        elif k == "shield":
            v = await asyncio.shield(mk_target(lab, s[1])); ev(lab, "sh=%s" % fmt_val(v))
        elif k == "tg":
            try:
                async with asyncio.TaskGroup() as tg:
                    for (clab, cb) in s[1]:
                        tasks[clab] = tg.create_task(block(clab, cb))
                    await block(lab, s[2])
            except BaseException as e:
                ev(lab, "tg-out " + desc(e)); raise
    for i, b in enumerate(p["tasks"]):
        tasks["t%d" % i] = loop.create_task(block("t%d" % i, b))
    top = [tasks["t%d" % i] for i in range(len(p["tasks"]))]
    sched = p["sched"]
    def driver(i):
        if p.get("ticks"): tr.append("D:it %d" % i)
        for a in sched:
            if a[0] != i: continue
            if a[1] == "cancel":
                t = tasks.get(a[2])
                if t is None: tr.append("D:nocancel %s" % a[2]); continue
                r = t.cancel(a[3]) if a[3] is not None else t.cancel()
                tr.append("D:cancel %s %s" % (a[2], r))
            else:
                f = futs[a[2]]
                if f.done(): tr.append("D:fdone %d" % a[2]); continue
                if a[1] == "set": f.set_result(a[3])
                elif a[1] == "exc": f.set_exception(ValueError(a[3]))
                else: f.cancel(a[3])
                tr.append("D:%s %d" % (a[1], a[2]))
        if i < p["K"]: loop.call_soon(driver, i + 1)
        else: ddone.set_result(None)
    ddone = loop.create_future()
    loop.call_soon(driver, 0)
    try:
        loop.run_until_complete(asyncio.gather(*top, ddone, return_exceptions=True))
    except Deadlock:
        tr.append("DEADLOCK")
    def final(t):
        if not t.done(): return "pending"
        if t.cancelled():
            try: t.result()
            except CancelledError as e: return "cancelled " + desc(e)
        e = t.exception()
        if e is not None: return "exc " + desc(e)
        return "ok"
    for lab in sorted(tasks):
        tr.append("F:%s %s cing=%d" % (lab, final(tasks[lab]), tasks[lab].cancelling()))
    tr.append("T=%.6f" % loop.time())
    for t in tasks.values():
        if not t.done(): t.cancel()
    try:
        loop.close()
    except Exception: pass
    return tr

if __name__ == "__main__":
    if sys.version_info[:2] != (3, 13):
        sys.exit("asyncio_programs.py pins asyncio 3.13's behaviour; this is Python %d.%d" % sys.version_info[:2])
    start, count = int(sys.argv[1]), int(sys.argv[2])
    for seed in range(start, start + count):
        program = gen(seed)
        print(json.dumps({"seed": seed, "program": program, "trace": run_prog(program)}), flush=True)

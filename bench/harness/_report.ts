/**
 * Reports for the harness: medians, markdown tables and hand-written SVG
 * bar charts.
 *
 * Private to `bench/harness/run.ts`.
 *
 * @module
 */

// Statistics and reports

/** The implementation family of a server; it picks the bar colour. */
export type Family = "tulip" | "deno" | "node" | "asyncio" | "uvloop" | "c";

/** One run's numbers, by metric key. */
export type Sample = Record<string, number>;

/** A number reported per run and summarised by its median. */
export interface MetricSpec {
  key: string;
  label: string;
  digits: number;
  better: "higher" | "lower";
}

/** Which metrics a workload reports, and which it charts. */
export interface Metrics {
  primary: MetricSpec;
  secondary: MetricSpec[];
  /** Keys of the metrics drawn as SVG panels. */
  chart: string[];
}

/** One server's results in one workload. */
export interface Entry {
  server: string;
  family: Family;
  status: "ok" | "skipped" | "failed";
  note?: string;
  comm?: string;
  runs: Sample[];
  errors: string[];
  median: Sample;
  min: Sample;
  max: Sample;
}

/** One workload's results, self-describing. */
export interface WorkloadResult {
  workload: string;
  title: string;
  description: string;
  settings: Record<string, number>;
  metrics: Metrics;
  entries: Entry[];
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

export function summarise(e: Entry): void {
  if (e.runs.length === 0) {
    if (e.status === "ok") e.status = "failed";
    return;
  }
  for (const key of Object.keys(e.runs[0])) {
    const xs = e.runs.map((r) => r[key]).filter((x) => Number.isFinite(x));
    if (xs.length === 0) continue;
    e.median[key] = median(xs);
    e.min[key] = Math.min(...xs);
    e.max[key] = Math.max(...xs);
  }
}

export function fmt(v: number | undefined, digits: number): string {
  if (v === undefined || !Number.isFinite(v)) return "–";
  const [int, frac] = v.toFixed(digits).split(".");
  const grouped = int.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return frac === undefined ? grouped : `${grouped}.${frac}`;
}

/**
 * Under this share of its core, a server was held back — by the client, or
 * by other work on the machine — rather than loaded: its CPU per request
 * then counts idle wake-ups too and is not comparable with a loaded run.
 */
const LOADED_PCT = 90;

export function markdown(res: WorkloadResult): string {
  const spec = res.metrics;
  const p = spec.primary;
  const head = [
    "server",
    p.label,
    "min–max",
    ...spec.secondary.map((m) => m.label),
    "runs",
    "note",
  ];
  const rows = res.entries.map((e) => {
    const ok = e.status !== "skipped" && e.runs.length > 0;
    const held = e.runs.filter((r) => r.server_cpu_pct < LOADED_PCT).length;
    const notes = [
      e.status === "ok" ? "" : e.status,
      e.note ?? "",
      held ? `${held} of ${e.runs.length} runs under ${LOADED_PCT}% CPU` : "",
      e.errors.length ? `${e.errors.length} run(s) failed: ${e.errors[0]}` : "",
    ].filter(Boolean).join("; ");
    return [
      e.server,
      ok ? fmt(e.median[p.key], p.digits) : "–",
      ok
        ? `${fmt(e.min[p.key], p.digits)}–${fmt(e.max[p.key], p.digits)}`
        : "–",
      ...spec.secondary.map((m) => ok ? fmt(e.median[m.key], m.digits) : "–"),
      String(e.runs.length),
      notes.replaceAll("|", "\\|"),
    ];
  });
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  return [
    `### ${res.workload}: ${res.title}`,
    "",
    res.description,
    "",
    line(head),
    line(
      head.map((_, i) => (i === 0 || i === head.length - 1 ? "---" : "---:")),
    ),
    ...rows.map(line),
    "",
  ].join("\n");
}

const COLOURS: Record<Family, string> = {
  tulip: "#e4572e",
  deno: "#2e86ab",
  node: "#3c9a5f",
  asyncio: "#7d5ba6",
  uvloop: "#b48ed8",
  c: "#5c5c5c",
};

function xml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;");
}

/** A horizontal bar chart: one row per server, one panel per metric. */
export function svgChart(res: WorkloadResult, footer: string): string {
  const spec = res.metrics;
  const metrics = spec.chart.map((k) =>
    [spec.primary, ...spec.secondary].find((m) => m.key === k)!
  );
  const labelW = 150;
  const panelW = 330;
  const gap = 30;
  const rowH = 24;
  const top = 84;
  // Wide enough for the panels and for the one-line texts (about 6.5 px
  // per character at these font sizes).
  const textW = 40 + 6.5 * Math.max(res.description.length, footer.length);
  const width = Math.ceil(
    Math.max(20 + labelW + metrics.length * (panelW + gap), textW),
  );
  const height = top + res.entries.length * rowH + 48;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="20" y="26" font-size="17" font-weight="bold">${
      xml(`${res.workload}: ${res.title}`)
    }</text>`,
    `<text x="20" y="45" fill="#555">${xml(res.description)}</text>`,
  );
  metrics.forEach((m, pi) => {
    const x0 = 20 + labelW + pi * (panelW + gap);
    const barMax = panelW - 90;
    const oks = res.entries.filter((e) => e.runs.length > 0);
    const max = Math.max(0, ...oks.map((e) => e.max[m.key] ?? 0)) || 1;
    out.push(
      `<text x="${x0}" y="${top - 12}" font-weight="bold">${xml(m.label)}` +
        `<tspan font-weight="normal" fill="#777">&#160;(${m.better} is better)</tspan></text>`,
      `<line x1="${x0}" y1="${top - 4}" x2="${x0}" y2="${
        top + res.entries.length * rowH
      }" stroke="#999"/>`,
    );
    res.entries.forEach((e, ri) => {
      const y = top + ri * rowH;
      if (pi === 0) {
        out.push(
          `<text x="${20 + labelW - 8}" y="${y + 16}" text-anchor="end">${
            xml(e.server)
          }</text>`,
        );
      }
      const v = e.median[m.key];
      if (e.runs.length === 0 || v === undefined) {
        out.push(
          `<text x="${x0 + 6}" y="${y + 16}" fill="#999" font-style="italic">${
            e.status === "skipped" ? "skipped" : "failed"
          }</text>`,
        );
        return;
      }
      const w = Math.max(1, (v / max) * barMax);
      out.push(
        `<rect x="${x0}" y="${y + 4}" width="${w.toFixed(1)}" height="${
          rowH - 8
        }" fill="${COLOURS[e.family]}"/>`,
      );
      const lo = e.min[m.key];
      const hi = e.max[m.key];
      if (e.runs.length > 1 && hi > lo) {
        const xl = x0 + (lo / max) * barMax;
        const xh = x0 + (hi / max) * barMax;
        const ym = y + rowH / 2;
        out.push(
          `<path d="M${xl.toFixed(1)} ${ym}H${xh.toFixed(1)}M${xl.toFixed(1)} ${
            ym - 4
          }V${ym + 4}M${xh.toFixed(1)} ${ym - 4}V${
            ym + 4
          }" stroke="#222" stroke-width="1"/>`,
        );
      }
      out.push(
        `<text x="${x0 + Math.max(w, (hi / max) * barMax) + 6}" y="${y + 16}">${
          fmt(v, m.digits)
        }</text>`,
      );
    });
  });
  out.push(
    `<text x="20" y="${height - 18}" fill="#777" font-size="11">${
      xml(footer)
    }</text>`,
    `</svg>`,
    "",
  );
  return out.join("\n");
}

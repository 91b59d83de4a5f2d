/**
 * Prometheus metrics, served at GET /metrics in the text exposition format 0.0.4.
 *
 * A small registry (counters, gauges, histograms with fixed buckets; no globals: each server builds its own)
 * and, in `createServerMetrics`, every metric the server exports, defined in this one place:
 *
 *   layerloop_queue_jobs{state="waiting|running"}                 gauge, read from the queue at scrape time
 *   layerloop_jobs_total{state="succeeded|failed|cancelled"}       counter, jobs by final state
 *   layerloop_job_latency_seconds{state}                           histogram, queued -> final state
 *   layerloop_job_run_seconds{state}                               histogram, started -> final state
 *   layerloop_engine_step_seconds                                  histogram, time between two denoising steps
 *   layerloop_engine_seconds_total, layerloop_engine_onnx_seconds_total    counters: time in the engine,
 *                                                                  and the part of it inside onnxruntime
 *   layerloop_http_requests_total{route,method,status}             counter (route is a bounded template)
 *   layerloop_errors_total{source="http|job|process"}              counter: 5xx answers, failed jobs, crashes
 *   layerloop_store_integrity_problems                             gauge, from the start-up integrity check
 *   layerloop_image_cache_bytes, layerloop_image_cache_images      gauges, the decoded-image cache at scrape time
 *   process_resident_memory_bytes, process_start_time_seconds      gauges
 */
import type { JobState } from '../shared/protocol';

export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

type Labels<L extends string> = { readonly [K in L]: string | number };

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

function formatLabels(pairs: [string, string][]): string {
  if (pairs.length === 0) return '';
  return `{${pairs.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(',')}}`;
}

/** Common to all three kinds: a name, help, label names, and one series per distinct label set. */
abstract class Metric<L extends string, S> {
  protected readonly series = new Map<string, { labels: [string, string][]; state: S }>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly L[],
  ) {
    if (!METRIC_NAME.test(name)) throw new Error(`invalid metric name '${name}'`);
    for (const l of labelNames) if (!LABEL_NAME.test(l) || l === 'le') throw new Error(`metric ${name}: invalid label name '${l}'`);
  }

  abstract readonly type: 'counter' | 'gauge' | 'histogram';
  protected abstract initial(): S;
  protected abstract renderSeries(labels: [string, string][], state: S): string[];

  protected get(labels: Labels<L> | undefined): S {
    const pairs: [string, string][] = this.labelNames.map((name) => {
      const v = labels?.[name];
      if (v === undefined) throw new Error(`metric ${this.name}: missing label '${name}'`);
      return [name, String(v)];
    });
    const key = pairs.map(([, v]) => v).join('\u0000');
    let entry = this.series.get(key);
    if (!entry) {
      entry = { labels: pairs, state: this.initial() };
      this.series.set(key, entry);
    }
    return entry.state;
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} ${this.type}`];
    // a metric without labels always shows a value, even before its first update
    if (this.labelNames.length === 0 && this.series.size === 0) this.get(undefined);
    for (const { labels, state } of this.series.values()) lines.push(...this.renderSeries(labels, state));
    return lines.join('\n');
  }
}

export class Counter<L extends string = never> extends Metric<L, { value: number }> {
  readonly type = 'counter';
  protected initial() {
    return { value: 0 };
  }
  /** `by` must be >= 0: a counter only goes up. */
  inc(...args: [L] extends [never] ? [by?: number] : [labels: Labels<L>, by?: number]): void {
    const [labels, by] = (this.labelNames.length === 0 ? [undefined, args[0]] : args) as [Labels<L> | undefined, number | undefined];
    const amount = by ?? 1;
    if (!(amount >= 0)) throw new Error(`counter ${this.name}: cannot increase by ${amount}`);
    this.get(labels).value += amount;
  }
  /** Show the series at 0 before anything happened (so rate() has a start). */
  init(labels: Labels<L>): void {
    this.get(labels);
  }
  value(labels?: Labels<L>): number {
    return this.get(labels).value;
  }
  protected renderSeries(labels: [string, string][], s: { value: number }): string[] {
    return [`${this.name}${formatLabels(labels)} ${formatValue(s.value)}`];
  }
}

export class Gauge<L extends string = never> extends Metric<L, { value: number }> {
  readonly type = 'gauge';
  protected initial() {
    return { value: 0 };
  }
  set(...args: [L] extends [never] ? [value: number] : [labels: Labels<L>, value: number]): void {
    const [labels, value] = (this.labelNames.length === 0 ? [undefined, args[0]] : args) as [Labels<L> | undefined, number];
    this.get(labels).value = value;
  }
  protected renderSeries(labels: [string, string][], s: { value: number }): string[] {
    return [`${this.name}${formatLabels(labels)} ${formatValue(s.value)}`];
  }
}

interface HistogramState {
  /** per bucket, not cumulative */
  counts: number[];
  sum: number;
  count: number;
}

export class Histogram<L extends string = never> extends Metric<L, HistogramState> {
  readonly type = 'histogram';
  readonly buckets: readonly number[];

  constructor(name: string, help: string, labelNames: readonly L[], buckets: readonly number[]) {
    super(name, help, labelNames);
    const sorted = [...buckets].sort((a, b) => a - b);
    if (sorted.length === 0 || sorted.some((b, i) => !Number.isFinite(b) || (i > 0 && b === sorted[i - 1]))) {
      throw new Error(`histogram ${name}: buckets must be distinct finite numbers`);
    }
    this.buckets = sorted;
  }

  protected initial(): HistogramState {
    return { counts: new Array<number>(this.buckets.length).fill(0), sum: 0, count: 0 };
  }

  observe(...args: [L] extends [never] ? [value: number] : [labels: Labels<L>, value: number]): void {
    const [labels, value] = (this.labelNames.length === 0 ? [undefined, args[0]] : args) as [Labels<L> | undefined, number];
    if (!Number.isFinite(value)) return;
    const s = this.get(labels);
    const i = this.buckets.findIndex((b) => value <= b);
    if (i >= 0) s.counts[i] += 1;
    s.sum += value;
    s.count += 1;
  }

  /** How many observations (for tests and benchmarks). */
  count(labels?: Labels<L>): number {
    return this.get(labels).count;
  }

  protected renderSeries(labels: [string, string][], s: HistogramState): string[] {
    const lines: string[] = [];
    let cumulative = 0;
    this.buckets.forEach((b, i) => {
      cumulative += s.counts[i];
      lines.push(`${this.name}_bucket${formatLabels([...labels, ['le', formatValue(b)]])} ${cumulative}`);
    });
    lines.push(`${this.name}_bucket${formatLabels([...labels, ['le', '+Inf']])} ${s.count}`);
    lines.push(`${this.name}_sum${formatLabels(labels)} ${formatValue(s.sum)}`);
    lines.push(`${this.name}_count${formatLabels(labels)} ${s.count}`);
    return lines;
  }
}

export class MetricsRegistry {
  private readonly metrics = new Map<string, Metric<string, unknown>>();
  private readonly collectors: (() => void)[] = [];

  counter<L extends string = never>(name: string, help: string, labelNames: readonly L[] = []): Counter<L> {
    return this.add(new Counter<L>(name, help, labelNames));
  }

  gauge<L extends string = never>(name: string, help: string, labelNames: readonly L[] = []): Gauge<L> {
    return this.add(new Gauge<L>(name, help, labelNames));
  }

  histogram<L extends string = never>(name: string, help: string, buckets: readonly number[], labelNames: readonly L[] = []): Histogram<L> {
    return this.add(new Histogram<L>(name, help, labelNames, buckets));
  }

  /** `fn` runs before every exposition (gauges read from elsewhere: the queue, the process). */
  onCollect(fn: () => void): void {
    this.collectors.push(fn);
  }

  /** Every metric in the text exposition format 0.0.4 (serve with METRICS_CONTENT_TYPE). */
  expose(): string {
    for (const fn of this.collectors) fn();
    return `${[...this.metrics.values()].map((m) => m.render()).join('\n')}\n`;
  }

  private add<M extends Metric<string, unknown>>(metric: M): M {
    if (this.metrics.has(metric.name)) throw new Error(`metric ${metric.name} is registered twice`);
    this.metrics.set(metric.name, metric);
    return metric;
  }
}

// ------------------------------------------------------------------------------------------ the server's

const FINAL_STATES = ['succeeded', 'failed', 'cancelled'] as const;
export type ErrorSource = 'http' | 'job' | 'process';

/** Seconds: from a 0.5 s edit on the tiny model to a 5-minute one behind a long queue. */
const JOB_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
/** Seconds per denoising step: ~10 ms (tiny model) to seconds (a real model on CPU). */
const STEP_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export interface ServerMetrics {
  readonly registry: MetricsRegistry;
  readonly httpRequests: Counter<'route' | 'method' | 'status'>;
  readonly errors: Counter<'source'>;
  readonly jobs: Counter<'state'>;
  readonly jobLatency: Histogram<'state'>;
  readonly jobRun: Histogram<'state'>;
  readonly engineSteps: Histogram;
  readonly engineSeconds: Counter;
  readonly engineOnnxSeconds: Counter;
  readonly storeIntegrityProblems: Gauge;
  /** JobQueueOptions.onStateChange: counts final states, observes latencies. Never throws. */
  onJobState(jobId: string, state: JobState, info: { at: number; withdrawn?: true }): void;
  /** The runner's EditObserver: one step took `ms`. */
  onStep(ms: number): void;
  /** The runner's EditObserver: an edit finished in the engine. */
  onEdit(timings: { totalMs: number; onnxMs: number }): void;
  /** An edit was queued for a document of this workspace. */
  countEdit(workspaceId: string): void;
  /** A request acted as a user of this workspace (its default one). */
  countRequest(workspaceId: string): void;
  /** Read the queue's depth at every scrape. */
  watchQueue(stats: () => { queued: number; running: number }): void;
  /** Read the decoded-image cache's size at every scrape. */
  watchImageCache(stats: () => { images: number; bytes: number }): void;
}

/** Workspaces with a label of their own in the per-workspace metrics: the series stay bounded however many exist. */
export const MAX_WORKSPACE_LABELS = 64;

/** The label for a value: itself for the first `max` distinct values seen, 'other' after. */
export function boundedLabels(max: number): (value: string) => string {
  const seen = new Set<string>();
  return (value) => {
    if (seen.has(value)) return value;
    if (seen.size >= max) return 'other';
    seen.add(value);
    return value;
  };
}

export function createServerMetrics(): ServerMetrics {
  const registry = new MetricsRegistry();
  const queueJobs = registry.gauge('layerloop_queue_jobs', 'Edit jobs in the queue: waiting, or running on the engine.', ['state']);
  queueJobs.set({ state: 'waiting' }, 0);
  queueJobs.set({ state: 'running' }, 0);
  const jobs = registry.counter('layerloop_jobs_total', 'Edit jobs that ended, by final state.', ['state']);
  for (const state of FINAL_STATES) jobs.init({ state });
  const jobLatency = registry.histogram('layerloop_job_latency_seconds', 'Time from queueing an edit job to its final state.', JOB_BUCKETS, ['state']);
  const jobRun = registry.histogram('layerloop_job_run_seconds', 'Time from starting an edit job on the engine to its final state.', JOB_BUCKETS, ['state']);
  const engineSteps = registry.histogram('layerloop_engine_step_seconds', 'Time per denoising step (between two progress events of one edit).', STEP_BUCKETS);
  const engineSeconds = registry.counter('layerloop_engine_seconds_total', 'Time the engine spent computing edits.');
  const engineOnnxSeconds = registry.counter('layerloop_engine_onnx_seconds_total', 'Part of layerloop_engine_seconds_total spent inside onnxruntime session.run.');
  const httpRequests = registry.counter('layerloop_http_requests_total', 'HTTP requests answered, by route template, method and status.', ['route', 'method', 'status']);
  const errors = registry.counter('layerloop_errors_total', 'Errors: 5xx answers (http), failed edit jobs (job), unhandled exceptions (process).', ['source']);
  for (const source of ['http', 'job', 'process'] as const) errors.init({ source });
  const storeIntegrityProblems = registry.gauge('layerloop_store_integrity_problems', 'Problems found by the store integrity check at start-up (0 = consistent).');
  const imageCacheBytes = registry.gauge('layerloop_image_cache_bytes', 'Decoded RGBA bytes held by the image cache (bounded, least recently used evicted).');
  const imageCacheImages = registry.gauge('layerloop_image_cache_images', 'Decoded images held by the image cache.');
  const workspaceEdits = registry.counter('layerloop_workspace_edits_total', `Edits queued, by workspace id (the first ${MAX_WORKSPACE_LABELS} seen; later ones as 'other').`, ['workspace']);
  const workspaceRequests = registry.counter('layerloop_workspace_requests_total', `Requests by signed-in users, by workspace id (the first ${MAX_WORKSPACE_LABELS} seen; later ones as 'other').`, ['workspace']);
  const workspaceLabel = boundedLabels(MAX_WORKSPACE_LABELS);
  const rss = registry.gauge('process_resident_memory_bytes', 'Resident memory size in bytes.');
  const startTime = registry.gauge('process_start_time_seconds', 'Start time of the process since the Unix epoch in seconds.');
  startTime.set(Math.round(Date.now() / 1000 - process.uptime()));
  registry.onCollect(() => rss.set(process.memoryUsage.rss()));

  /** when each live job was queued and started (epoch ms); removed at its final state */
  const times = new Map<string, { queuedAt: number; startedAt: number | null }>();

  return {
    registry,
    httpRequests,
    errors,
    jobs,
    jobLatency,
    jobRun,
    engineSteps,
    engineSeconds,
    engineOnnxSeconds,
    storeIntegrityProblems,
    onJobState(jobId, state, info) {
      if (info.withdrawn) {
        times.delete(jobId); // never acknowledged: a failed edits.create (counted as its HTTP answer), not a job
        return;
      }
      if (state === 'queued') {
        times.set(jobId, { queuedAt: info.at, startedAt: null });
        return;
      }
      const t = times.get(jobId);
      if (state === 'running') {
        if (t) t.startedAt = info.at;
        return;
      }
      times.delete(jobId);
      jobs.inc({ state });
      if (state === 'failed') errors.inc({ source: 'job' });
      if (t) jobLatency.observe({ state }, Math.max(0, info.at - t.queuedAt) / 1000);
      if (t?.startedAt != null) jobRun.observe({ state }, Math.max(0, info.at - t.startedAt) / 1000);
    },
    countEdit(workspaceId) {
      workspaceEdits.inc({ workspace: workspaceLabel(workspaceId) });
    },
    countRequest(workspaceId) {
      workspaceRequests.inc({ workspace: workspaceLabel(workspaceId) });
    },
    onStep(ms) {
      engineSteps.observe(ms / 1000);
    },
    onEdit({ totalMs, onnxMs }) {
      engineSeconds.inc(Math.max(0, totalMs) / 1000);
      engineOnnxSeconds.inc(Math.max(0, onnxMs) / 1000);
    },
    watchQueue(stats) {
      registry.onCollect(() => {
        const s = stats();
        queueJobs.set({ state: 'waiting' }, s.queued);
        queueJobs.set({ state: 'running' }, s.running);
      });
    },
    watchImageCache(stats) {
      registry.onCollect(() => {
        const s = stats();
        imageCacheBytes.set(s.bytes);
        imageCacheImages.set(s.images);
      });
    },
  };
}

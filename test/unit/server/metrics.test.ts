import { createServerMetrics, MetricsRegistry } from '../../../server/metrics';

/** Every sample line of the 0.0.4 text format: name{labels} value, its family announced by # TYPE before it. */
function checkExposition(text: string): Map<string, string> {
  expect(text.endsWith('\n')).toBe(true);
  const types = new Map<string, string>();
  for (const line of text.trimEnd().split('\n')) {
    const type = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (type) {
      expect(types.has(type[1])).toBe(false);
      types.set(type[1], type[2]);
      continue;
    }
    if (line.startsWith('# HELP ')) continue;
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")*\})? (-?[0-9.e+-]+|\+Inf|-Inf|NaN)$/.exec(line);
    expect(sample).not.toBeNull();
    const family = sample![1].replace(/_(bucket|sum|count)$/, '');
    expect(types.has(sample![1]) || types.get(family) === 'histogram').toBe(true);
  }
  return types;
}

describe('MetricsRegistry', () => {
  it('renders counters, gauges and histograms in the text exposition format', () => {
    const r = new MetricsRegistry();
    const plain = r.counter('things_total', 'Things.\nSecond line with a \\ backslash.');
    const labelled = r.counter('requests_total', 'Requests.', ['route', 'status']);
    const gauge = r.gauge('depth', 'Depth.', ['state']);
    const hist = r.histogram('latency_seconds', 'Latency.', [0.1, 1, 0.5]);
    expect(r.expose()).toContain('things_total 0\n'); // no labels: shown before the first inc
    plain.inc();
    plain.inc(2.5);
    labelled.inc({ route: '/trpc/jobs.get', status: 200 });
    labelled.inc({ route: '/trpc/jobs.get', status: 200 });
    labelled.inc({ route: 'a "quoted"\\path\nx', status: 404 });
    gauge.set({ state: 'waiting' }, 3);
    for (const v of [0.05, 0.1, 0.3, 2, 7]) hist.observe(v);
    hist.observe(NaN); // ignored

    const text = r.expose();
    expect(checkExposition(text)).toEqual(
      new Map([
        ['things_total', 'counter'],
        ['requests_total', 'counter'],
        ['depth', 'gauge'],
        ['latency_seconds', 'histogram'],
      ]),
    );
    expect(text).toContain('# HELP things_total Things.\\nSecond line with a \\\\ backslash.\n');
    expect(text).toContain('things_total 3.5\n');
    expect(text).toContain('requests_total{route="/trpc/jobs.get",status="200"} 2\n');
    expect(text).toContain('requests_total{route="a \\"quoted\\"\\\\path\\nx",status="404"} 1\n');
    expect(text).toContain('depth{state="waiting"} 3\n');
    // buckets sorted and cumulative, then +Inf, sum and count
    expect(text).toContain(
      [
        'latency_seconds_bucket{le="0.1"} 2',
        'latency_seconds_bucket{le="0.5"} 3',
        'latency_seconds_bucket{le="1"} 3',
        'latency_seconds_bucket{le="+Inf"} 5',
        'latency_seconds_sum 9.45',
        'latency_seconds_count 5',
      ].join('\n'),
    );
  });

  it('refuses misuse: duplicate names, bad names, missing labels, negative increments', () => {
    const r = new MetricsRegistry();
    const c = r.counter('a_total', 'A.', ['kind']);
    expect(() => r.counter('a_total', 'again')).toThrow(/registered twice/);
    expect(() => r.gauge('bad-name', 'x')).toThrow(/invalid metric name/);
    expect(() => r.histogram('h', 'x', [1], ['le'])).toThrow(/invalid label name/);
    expect(() => r.histogram('h2', 'x', [])).toThrow(/buckets/);
    expect(() => c.inc({} as { kind: string })).toThrow(/missing label 'kind'/);
    expect(() => c.inc({ kind: 'x' }, -1)).toThrow(/cannot increase/);
  });
});

describe('createServerMetrics', () => {
  it('counts jobs by final state and observes their latency, steps, engine time and queue depth', () => {
    const m = createServerMetrics();
    let depth = { queued: 2, running: 1 };
    m.watchQueue(() => depth);
    m.onJobState('j1', 'queued', { at: 1_000 });
    m.onJobState('j1', 'running', { at: 1_500 });
    m.onJobState('j1', 'succeeded', { at: 3_000 });
    m.onJobState('j2', 'queued', { at: 1_000 });
    m.onJobState('j2', 'cancelled', { at: 1_200 }); // never started: latency only
    m.onJobState('j3', 'queued', { at: 1_000 });
    m.onJobState('j3', 'running', { at: 1_000 });
    m.onJobState('j3', 'failed', { at: 1_100 });
    m.onStep(20);
    m.onStep(30);
    m.onEdit({ totalMs: 500, onnxMs: 450 });

    const text = m.registry.expose();
    checkExposition(text);
    expect(text).toContain('layerloop_queue_jobs{state="waiting"} 2\n');
    expect(text).toContain('layerloop_queue_jobs{state="running"} 1\n');
    expect(text).toContain('layerloop_jobs_total{state="succeeded"} 1\n');
    expect(text).toContain('layerloop_jobs_total{state="cancelled"} 1\n');
    expect(text).toContain('layerloop_jobs_total{state="failed"} 1\n');
    expect(text).toContain('layerloop_errors_total{source="job"} 1\n');
    expect(text).toContain('layerloop_job_latency_seconds_sum{state="succeeded"} 2\n');
    expect(text).toContain('layerloop_job_run_seconds_sum{state="succeeded"} 1.5\n');
    expect(text).toContain('layerloop_job_latency_seconds_count{state="cancelled"} 1\n');
    expect(text).not.toContain('layerloop_job_run_seconds_count{state="cancelled"}');
    expect(text).toContain('layerloop_engine_step_seconds_count 2\n');
    expect(text).toContain('layerloop_engine_step_seconds_bucket{le="0.025"} 1\n');
    expect(text).toContain('layerloop_engine_seconds_total 0.5\n');
    expect(text).toContain('layerloop_engine_onnx_seconds_total 0.45\n');
    expect(text).toMatch(/^process_resident_memory_bytes \d+$/m);
    depth = { queued: 0, running: 0 };
    expect(m.registry.expose()).toContain('layerloop_queue_jobs{state="waiting"} 0\n');
  });
});

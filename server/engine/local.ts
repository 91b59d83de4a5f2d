/**
 * The engine contract both runners implement: in this thread (`localEngine`: the CLI, benchmarks, tests) or in
 * the worker thread (engine.ts: the server). server/edit drives either.
 */
import type { ModelAdapter, ModelInfo } from './family';
import type { RunTimer } from './ort';
import { edit, type EngineHooks, type EngineInput, type EngineResult } from './pipeline';
import type { EngineTimings } from './protocol';

export interface TensorEngine {
  readonly info: ModelInfo;
  edit(input: EngineInput, hooks?: EngineHooks): Promise<{ result: EngineResult; timings: EngineTimings }>;
}

/** Runs edits on `model` in the calling thread; `timer` must be the one the model's sessions were loaded with. */
export function localEngine(model: ModelAdapter, timer: RunTimer): TensorEngine {
  return {
    info: model.info,
    async edit(input, hooks) {
      const started = performance.now();
      const onnxBefore = timer.onnxMs;
      const result = await edit(model, input, hooks);
      return { result, timings: { totalMs: performance.now() - started, onnxMs: timer.onnxMs - onnxBefore } };
    },
  };
}

/** klein's guidance: diffusers' neg + s (cond - neg) for s > 1, the instruction alone otherwise, masks and regions. */
import { classifierFreeGuidance } from '../../../../server/engine/guidance';

const out = Float32Array.of(1, 2, 3, 4, /* uncond */ 0, 1, 1, 0);

describe('classifierFreeGuidance', () => {
  it('batches [instruction, empty prompt] and combines as uncond + s (cond - uncond)', () => {
    const g = classifierFreeGuidance(1, 4);
    expect(g.slots.map((s) => [s.role, s.prompt])).toEqual([['text', 0], ['uncond', null]]);
    expect(Array.from(g.combine(out, 4))).toEqual([4, 5, 9, 16]);
  });

  it('runs the instruction alone at s <= 1 (no guidance, as the pipeline; distilled models)', () => {
    for (const s of [1, 0.5]) {
      const g = classifierFreeGuidance(1, s);
      expect(g.slots).toHaveLength(1);
      expect(Array.from(g.combine(Float32Array.of(1, 2), 2))).toEqual([1, 2]);
    }
  });

  it('a mask weights the guided difference per pixel, the same for every channel', () => {
    const g = classifierFreeGuidance(1, 2, [Float32Array.of(1, 0)]);
    // [C=2, h*w=2]: pixel 0 guided (u + 2 (c - u)), pixel 1 the empty-prompt prediction
    expect(Array.from(g.combine(out, 4))).toEqual([2, 1, 5, 0]);
    expect(classifierFreeGuidance(1, 1, [Float32Array.of(0.5, 1)]).slots).toHaveLength(2);
    expect(() => g.combine(out.subarray(0, 6), 4)).toThrow(/expected 2 x 4/);
  });

  it('sums each region\'s masked guided difference: [text_1, text_2, uncond]', () => {
    const g = classifierFreeGuidance(2, 2, [Float32Array.of(1, 0), Float32Array.of(0, 1)]);
    expect(g.slots.map((s) => [s.role, s.prompt])).toEqual([['text', 0], ['text', 1], ['uncond', null]]);
    // region 0 edits pixel 0 toward [1, 3], region 1 pixel 1 toward [6, 8]; uncond [0, 1, 1, 0]
    const three = Float32Array.of(1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 1, 0);
    expect(Array.from(g.combine(three, 4))).toEqual([2, 11, 5, 16]);
    expect(() => classifierFreeGuidance(2, 2, [null])).toThrow(/1 masks for 2 regions/);
  });
});

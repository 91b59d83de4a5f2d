/** klein's guidance: diffusers' neg + s (cond - neg) for s > 1, the instruction alone otherwise, and the masked form. */
import { classifierFreeGuidance } from '../../../../server/engine/guidance';

const out = Float32Array.of(1, 2, 3, 4, /* uncond */ 0, 1, 1, 0);

describe('classifierFreeGuidance', () => {
  it('batches [instruction, empty prompt] and combines as uncond + s (cond - uncond)', () => {
    const g = classifierFreeGuidance(4, null);
    expect(g.slots.map((s) => [s.role, s.prompt])).toEqual([['text', 0], ['uncond', null]]);
    expect(Array.from(g.combine(out, 4))).toEqual([4, 5, 9, 16]);
  });

  it('runs the instruction alone at s <= 1 (no guidance, as the pipeline; distilled models)', () => {
    for (const s of [1, 0.5]) {
      const g = classifierFreeGuidance(s, null);
      expect(g.slots).toHaveLength(1);
      expect(Array.from(g.combine(Float32Array.of(1, 2), 2))).toEqual([1, 2]);
    }
  });

  it('a mask weights the guided difference per pixel, the same for every channel', () => {
    const g = classifierFreeGuidance(2, Float32Array.of(1, 0));
    // [C=2, h*w=2]: pixel 0 guided (u + 2 (c - u)), pixel 1 the empty-prompt prediction
    expect(Array.from(g.combine(out, 4))).toEqual([2, 1, 5, 0]);
    expect(classifierFreeGuidance(1, Float32Array.of(0.5, 1)).slots).toHaveLength(2);
    expect(() => g.combine(out.subarray(0, 6), 4)).toThrow(/expected 2 x 4/);
  });
});

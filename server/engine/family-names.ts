/**
 * Each family's label and the model_index.json `_class_name`s it loads, without its adapter: the server's main
 * thread names the family of a folder (models.list) without loading ONNX Runtime, which only the engine worker
 * does. The adapters' ModelFamily objects take their names from here.
 */
export const PIX2PIX_NAMES = Object.freeze({
  label: 'InstructPix2Pix',
  classNames: Object.freeze([
    'StableDiffusionInstructPix2PixPipeline', // diffusers
    'ORTStableDiffusionInstructPix2PixPipeline', // optimum's ONNX Runtime wrapper, as its save_pretrained records it
    'OnnxStableDiffusionInstructPix2PixPipeline', // community ONNX pipelines
    'OnnxStableDiffusionPipeline', // diffusers' convert_stable_diffusion_checkpoint_to_onnx.py, any SD model: the 8-channel UNet check decides
  ]),
});

export const KLEIN_NAMES = Object.freeze({ label: 'FLUX.2 [klein]', classNames: Object.freeze(['Flux2KleinPipeline']) });

/** The label of the family that loads `className`, or null when no family does. */
export function familyLabel(className: string | null): string | null {
  return [PIX2PIX_NAMES, KLEIN_NAMES].find((f) => className !== null && f.classNames.includes(className))?.label ?? null;
}

/**
 * GPU stages that turn captured feature maps into pictures (docs/design.md:
 * src/vis). Each stage takes tensors on the GPU (a CapturedTensor as it is,
 * or any { buffer, dims } in float32 NCHW) and a Gpu, returns new buffers the
 * caller owns, and records into a shared CommandBatch when given one
 * (`{ batch }`), else submits at once. Shapes and options are checked before
 * anything is recorded (InputError / GpuError); WebGPU errors surface as
 * GpuError inside `checked()` (gpu/device.ts), which featureMap uses.
 * featureMap runs the whole recipe in one submit and reads back only the
 * pictures.
 */
export { CommandBatch, readTensor, uploadTensor, type GpuTensor, type StageOptions, type TensorLike } from './tensor.js';
export { parseReduction, reduceChannels, REDUCTIONS, type Reduction } from './reduce.js';
export { resize, RESIZE_MODES, type ResizeMode, type ResizeOptions } from './resize.js';
export { reduceResized } from './reduce-resized.js';
export { combineRanges, normalize, normalizeShared, readRange, valueRange, type GpuRange, type Normalization } from './normalize.js';
export { readRGBA, toRGBA, type GpuImages, type RgbaImage } from './rgba.js';
export * from './colormap.js';
export { featureMap, featureMaps, type FeatureMapImage, type FeatureMapOptions, type ReductionOrder } from './feature-map.js';
export { overlay, panel, uploadImage, type PanelOptions } from './compose.js';
export {
  channelGrid,
  channelMeans,
  channelMontage,
  channelRange,
  gridLayout,
  topChannels,
  type ChannelGridImage,
  type ChannelGridOptions,
  type GpuGrid,
  type GridChannels,
  type GridLayout,
  type MontageOptions,
} from './grid.js';
export {
  readClassMap,
  segmentation,
  segmentationMask,
  type GpuClassMap,
  type GpuSegmentation,
  type SegmentationImage,
  type SegmentationOptions,
} from './segmentation.js';
export {
  binaryMask,
  binarySegmentation,
  type BinaryMaskOptions,
  type BinarySegmentationImage,
  type BinaryValues,
  type GpuBinarySegmentation,
} from './binary.js';
export {
  cam,
  CAM_METHODS,
  camPicture,
  parseCamMethod,
  topEigenvector,
  type CamMethod,
  type CamOptions,
  type CamPictureOptions,
  type GpuCamPicture,
} from './cam.js';

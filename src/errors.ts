/**
 * Typed errors. Each carries what a user needs to fix the problem: the file,
 * node, tensor or option at fault and what was expected. The CLI prints
 * `message` alone (no stack) for these classes.
 */
export class SegscopeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** The model file or graph is malformed or inconsistent. */
export class ModelError extends SegscopeError {}

/** The graph uses op types (or op variants) segscope cannot run. */
export class UnsupportedOpError extends SegscopeError {}

/** A user-supplied input (tensor, option, file) is wrong. */
export class InputError extends SegscopeError {}

/** The WebGPU adapter/device failed: none found, validation error, device lost, limits exceeded. */
export class GpuError extends SegscopeError {}

/**
 * A node needs the value of a tensor at load time (a Reshape's shape, Clip's
 * bounds, an op the engine only evaluates on the CPU) that is computed at run
 * time. `tensors` names them: a Session reads the graph inputs they come from
 * on the host at run time when those are small (runtime/parameters.ts).
 */
export class ValueNeededError extends UnsupportedOpError {
  constructor(
    message: string,
    readonly tensors: readonly string[],
  ) {
    super(message);
  }
}

import { ModelError } from '../errors.js';

/** ONNX element types, by the names numpy/PyTorch use. */
export type ElemType =
  | 'float32'
  | 'float16'
  | 'float64'
  | 'bfloat16'
  | 'int8'
  | 'uint8'
  | 'int16'
  | 'uint16'
  | 'int32'
  | 'uint32'
  | 'int64'
  | 'uint64'
  | 'bool'
  | 'string';

export const isFloatType = (t: ElemType): boolean => t === 'float32' || t === 'float16' || t === 'float64' || t === 'bfloat16';

/**
 * Whether tensors of types `a` and `b` may meet where ONNX asks for one type
 * (Add's inputs, Concat's). Float types all agree: a float16 model's
 * constants are held as float32 from load on, and what floats are stored as
 * on the GPU is the session's choice (model/precision.ts).
 */
export const typesAgree = (a: ElemType, b: ElemType): boolean => a === b || (isFloatType(a) && isFloatType(b));

/**
 * A tensor held on the host. Floating-point data is always Float32Array
 * (float16/float64/bfloat16 are converted at load, so `type` is then
 * 'float32'). Integer and bool data is Float64Array holding exact integers:
 * shape arithmetic never needs more than 2^53, and int64 sentinels such as
 * INT64_MAX in Slice ends still compare as "past the end".
 */
export interface HostTensor {
  readonly type: ElemType;
  readonly dims: readonly number[];
  readonly data: Float32Array | Float64Array;
}

export const sizeOf = (dims: readonly number[]): number => dims.reduce((a, b) => a * b, 1);

/** Larger tensors cannot be indexed by typed arrays or WebGPU buffers anyway. */
export const MAX_ELEMENTS = 2 ** 31;

export function hostTensor(type: ElemType, dims: readonly number[], data: ArrayLike<number>): HostTensor {
  const n = sizeOf(dims);
  if (data.length !== n) throw new ModelError(`tensor of shape [${dims.join(',')}] needs ${n} values, got ${data.length}`);
  return { type, dims: [...dims], data: isFloatType(type) ? Float32Array.from(data) : Float64Array.from(data) };
}

/** A dimension from the file: a number, or a symbolic name (dim_param) resolved at session time. */
export type Dim = number | string;

export interface ValueInfo {
  name: string;
  type: ElemType;
  /** undefined when the file gives no shape. */
  dims?: Dim[];
}

export type AttrValue = number | number[] | string | string[] | HostTensor;

/** A tensor's element type and concrete shape. */
export interface TensorType {
  type: ElemType;
  dims: number[];
}

/** A node input as ops and folding see it at compile time. */
export interface TypedInput extends TensorType {
  name: string;
  /** The value, when it is known at compile time (initializer or folded constant). */
  value?: HostTensor;
}

/**
 * Op types of segscope's own nodes (the gradient ops src/autograd emits):
 * never read from a model file, which refuses them (model/from-onnx.ts).
 */
export const INTERNAL_OP_PREFIX = 'segscope::';

/**
 * The key of a node's op in the op registry: its op type in the default
 * domain, `<domain>.<opType>` in any other (the com.microsoft QLinear ops
 * onnxruntime's quantizer writes are 'com.microsoft.QLinearAdd'), as
 * error messages name them.
 */
export const opKey = (node: Pick<Node, 'domain' | 'opType'>): string => (node.domain ? `${node.domain}.${node.opType}` : node.opType);

/** The node that produces each tensor of `nodes`, by tensor name. */
export const producers = (nodes: readonly Node[]): Map<string, Node> => new Map(nodes.flatMap((node) => node.outputs.map((output) => [output, node] as const)));

export interface Node {
  /** Unique within the graph: the file's node name, or `<opType>_<index>` when the file has none. */
  name: string;
  opType: string;
  domain: string;
  /** '' marks an omitted optional input. */
  inputs: string[];
  outputs: string[];
  attrs: Attrs;
  /**
   * Work fused into this node's kernels by a pass (never read from a file):
   * a residual tensor added (node input 3 of a Conv) and an activation
   * applied to the result, as onnxruntime's FusedConv does.
   */
  epilogue?: Epilogue;
}

export interface Epilogue {
  activation?: 'Relu';
  residual?: boolean;
  /** Intermediate values of the fused chain the kernel also writes, because a capture keeps them. */
  taps?: EpilogueTaps;
}

/**
 * Node output indices at which a fused kernel also writes a tensor of the
 * chain it fused: the op's own result before the residual is added, and the
 * value the activation is applied to. A capture thus keeps the kernels of a
 * run without captures, and changes no other value (model/passes.ts
 * fuseEpilogues).
 */
export interface EpilogueTaps {
  beforeResidual?: number;
  beforeActivation?: number;
}

export interface Graph {
  /** Nodes in topological order. */
  nodes: Node[];
  /** Runtime inputs (initializers excluded). */
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  initializers: Map<string, HostTensor>;
  /** Opset of the default ('' / 'ai.onnx') domain. */
  opset: number;
  /** metadata_props of the model. */
  metadata: Record<string, string>;
  /** The file the graph was read from, for error messages ('' when built in memory). */
  source: string;
}

/** Typed attribute access; errors name the node and the attribute. */
export class Attrs {
  constructor(
    private readonly values: ReadonlyMap<string, AttrValue>,
    private readonly where: string,
  ) {}

  has(name: string): boolean {
    return this.values.has(name);
  }

  names(): string[] {
    return [...this.values.keys()];
  }

  raw(name: string): AttrValue | undefined {
    return this.values.get(name);
  }

  int(name: string, fallback?: number): number {
    const v = this.values.get(name);
    if (v === undefined) return this.missing(name, fallback);
    if (typeof v !== 'number') throw this.wrong(name, 'an int');
    return v;
  }

  float(name: string, fallback?: number): number {
    return this.int(name, fallback);
  }

  ints(name: string, fallback?: number[]): number[] {
    const v = this.values.get(name);
    if (v === undefined) return this.missing(name, fallback);
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'number')) throw this.wrong(name, 'a list of ints');
    return v as number[];
  }

  floats(name: string, fallback?: number[]): number[] {
    return this.ints(name, fallback);
  }

  string(name: string, fallback?: string): string {
    const v = this.values.get(name);
    if (v === undefined) return this.missing(name, fallback);
    if (typeof v !== 'string') throw this.wrong(name, 'a string');
    return v;
  }

  tensor(name: string): HostTensor {
    const v = this.values.get(name);
    if (v === undefined) return this.missing<HostTensor>(name, undefined);
    if (typeof v !== 'object' || Array.isArray(v)) throw this.wrong(name, 'a tensor');
    return v;
  }

  private missing<T>(name: string, fallback: T | undefined): T {
    if (fallback === undefined) throw new ModelError(`${this.where}: required attribute '${name}' is missing`);
    return fallback;
  }

  private wrong(name: string, expected: string): ModelError {
    return new ModelError(`${this.where}: attribute '${name}' must be ${expected}`);
  }
}

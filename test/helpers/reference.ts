/**
 * onnxruntime's CPU provider as the fuzzer's reference, in a child process of
 * its own: a mutated model that segscope runs can still crash or hang
 * onnxruntime's native code, which must end the reference, not the test or
 * the fuzz worker, and its memory must not count in the case's RSS bound.
 * One child serves every case (starting one takes ~0.3 s) and is replaced
 * after a crash or a hang.
 *
 * The child loads the mutated file itself, so onnxruntime parses the very
 * bytes segscope read (test/helpers/ort.ts re-encodes the model through
 * segscope's decoder, which would hide a corruption segscope tolerates), and
 * finds the dynamo fixture's external data beside it.
 */
import { fork, type ChildProcess } from 'node:child_process';
import type * as Ort from 'onnxruntime-node';
import type { HostTensor } from '../../src/model/graph.js';

/** onnxruntime's outputs by name, every element type as numbers; or why it refused the model. */
type Reference = { outputs: Map<string, { dims: number[]; data: Float32Array | Float64Array }> } | { refused: string };

interface Request {
  file: string;
  feeds: Record<string, { dims: number[]; data: Float32Array }>;
}

type Reply = { outputs: [name: string, dims: number[], data: Float32Array | Float64Array][] } | { refused: string };

/** A fixture loads and runs in ~10-30 ms, in a fresh child ~0.3 s: a bound against hangs, not a speed check. */
export const REFERENCE_TIMEOUT_MS = 20_000;

export class OrtReference {
  private child?: ChildProcess;

  /** Runs `file` on `feeds`; a refusal, crash or hang of onnxruntime is a `refused` answer, never a throw. */
  run(file: string, feeds: Record<string, HostTensor>): Promise<Reference> {
    this.child ??= this.start();
    const child = this.child;
    const request: Request = {
      file,
      feeds: Object.fromEntries(Object.entries(feeds).map(([name, t]) => [name, { dims: [...t.dims], data: Float32Array.from(t.data) }])),
    };
    return new Promise((resolve) => {
      const done = (reference: Reference) => {
        clearTimeout(timer);
        child.off('message', onReply).off('exit', onExit);
        resolve(reference);
      };
      const onReply = (reply: Reply) =>
        done('refused' in reply ? reply : { outputs: new Map(reply.outputs.map(([name, dims, data]) => [name, { dims, data }])) });
      const onExit = (code: number | null, signal: string | null) => done({ refused: `onnxruntime crashed (${signal ?? `exit code ${code}`})` });
      const timer = setTimeout(() => {
        done({ refused: `onnxruntime hung (no answer in ${REFERENCE_TIMEOUT_MS / 1000} s)` });
        // Forgotten now, not at its exit: the next request must not meet its death.
        this.child = undefined;
        child.kill('SIGKILL');
      }, REFERENCE_TIMEOUT_MS);
      child.on('message', onReply).on('exit', onExit);
      child.send(request);
    });
  }

  private start(): ChildProcess {
    // Typed arrays cross as themselves with 'advanced' serialization, not as JSON objects of indices.
    const child = fork(import.meta.filename, ['--serve'], {
      execArgv: ['--import', 'tsx'],
      serialization: 'advanced',
      stdio: ['ignore', 'ignore', 'ignore', 'ipc'],
    });
    // Whenever it ends, even between requests, the next request starts another.
    child.on('exit', () => {
      if (this.child === child) this.child = undefined;
    });
    return child;
  }

  close(): void {
    this.child?.kill();
    this.child = undefined;
  }
}

/** The child's side: one request at a time, as the parent sends them. */
async function serve(ort: typeof Ort, request: Request): Promise<Reply> {
  let session: Ort.InferenceSession | undefined;
  try {
    // As test/helpers/ort.ts: no graph optimizations, so fusions do not change the reference's rounding.
    session = await ort.InferenceSession.create(request.file, { executionProviders: ['cpu'], graphOptimizationLevel: 'disabled' });
    const feeds = Object.fromEntries(Object.entries(request.feeds).map(([name, t]) => [name, new ort.Tensor('float32', t.data, t.dims)]));
    const out = await session.run(feeds);
    return {
      outputs: Object.entries(out).map(([name, t]) => [
        name,
        [...t.dims],
        // segscope holds integer tensors as float64; int64 comes back as BigInt64Array, bool as Uint8Array.
        t.type === 'float32' ? (t.data as Float32Array) : Float64Array.from(t.data as ArrayLike<number | bigint>, Number),
      ]),
    };
  } catch (e) {
    return { refused: e instanceof Error ? e.message.split('\n')[0]! : String(e) };
  } finally {
    await session?.release();
  }
}

if (process.argv[1] === import.meta.filename && process.argv[2] === '--serve') {
  // Loaded here only: the processes that import this module to start the child never need onnxruntime's native code.
  // The listener is attached at once, so that no request arrives before it.
  const ort = import('onnxruntime-node');
  process.on('message', async (request: Request) => process.send!(await serve(await ort, request)));
  // The parent died or was killed (a fuzz worker's watchdog): nobody is left to answer.
  process.on('disconnect', () => process.exit(0));
}

import type { Graph, Node } from './graph.js';

/**
 * PyTorch module paths and the scope names exporters write into node names.
 *
 * The TorchScript exporter (torch >= 1.13) names a node after the module
 * scopes it ran in: `/classifier/aspp/project/project.0/Conv` is the Conv of
 * module `classifier.aspp.project.0`. A numeric child joins its parent's name
 * (`project.0`, not `0`), because Sequential children are named by index.
 */

/** The module path of a node from its scope name, e.g. 'classifier.aspp.project.0'; '' when the name has no scope. */
export function modulePathOf(nodeName: string): string {
  if (!nodeName.startsWith('/')) return '';
  const path: string[] = [];
  let previous = '';
  for (const segment of nodeName.split('/').slice(1, -1)) {
    // 'project.0' under 'project' adds only '0'; 'conv.0.0' under 'conv.0' too.
    path.push(previous && segment.startsWith(`${previous}.`) ? segment.slice(previous.length + 1) : segment);
    previous = segment;
  }
  return path.join('.');
}

/**
 * Whether a node ran inside a module: `path` is a module path
 * ('classifier.aspp.convs.0', compared with the node's own module path, so a
 * ModuleList that writes no scope of its own still matches) or a scope
 * ('/classifier/aspp', a prefix of the node name).
 */
export function inModule(nodeName: string, path: string): boolean {
  if (path.startsWith('/')) return nodeName.startsWith(path.endsWith('/') ? path : `${path}/`);
  const own = modulePathOf(nodeName);
  return own === path || own.startsWith(`${path}.`);
}

/**
 * A module's outputs: tensors produced inside it (`inside`) that a node
 * outside reads or that are graph outputs, excluding load-time constants.
 * This is what register_forward_hook would see leave the module.
 */
export function tensorsLeaving(graph: Graph, inside: (node: Node) => boolean, isConstant: (tensor: string) => boolean): string[] {
  const readOutside = new Set(graph.nodes.filter((n) => !inside(n)).flatMap((n) => n.inputs));
  for (const o of graph.outputs) readOutside.add(o.name);
  return graph.nodes
    .filter(inside)
    .flatMap((n) => n.outputs)
    .filter((t) => t && readOutside.has(t) && !isConstant(t));
}

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

/** The scope prefix of a module path: 'aspp.project.0' -> '/aspp/project/project.0/'. Scope-style input ('/aspp/project') is kept. */
export function scopeOf(modulePath: string): string {
  if (modulePath.startsWith('/')) return modulePath.endsWith('/') ? modulePath : `${modulePath}/`;
  const segments: string[] = [];
  for (const part of modulePath.split('.')) {
    const last = segments[segments.length - 1];
    segments.push(/^\d+$/.test(part) && last !== undefined ? `${last}.${part}` : part);
  }
  return `/${segments.join('/')}/`;
}

"""The package's layers: every import runs down, and no modules or folders import in a circle.

    app -> kubeflow -> pipeline -> components -> models;   serving stands alone.

Imports inside functions count too: a lazy import that runs back up is still a wall in the wrong
place. The checker itself is tried on a small package made to break both rules.
"""

import ast
import pathlib
from typing import Dict, Iterable, List, Set

import ganpipe

# Each layer and the layers it may import, besides itself.
ALLOWED = {
    'app': {'kubeflow', 'pipeline', 'components', 'models', 'serving'},
    'kubeflow': {'pipeline', 'components', 'models'},
    'pipeline': {'components', 'models'},
    # The infra validator starts and queries a model server.
    'components': {'models', 'serving'},
    'models': set(),
    'serving': set(),
}


def module_names(root: pathlib.Path, package: str) -> Dict[str, pathlib.Path]:
  """Dotted module name -> file, for every .py file of the package at `root`."""
  modules = {}
  for path in sorted(root.rglob('*.py')):
    parts = [package, *path.relative_to(root).with_suffix('').parts]
    if parts[-1] == '__init__':
      parts.pop()
    modules['.'.join(parts)] = path
  return modules


def imports_of(path: pathlib.Path, package: str, modules: Iterable[str]) -> Set[str]:
  """The package's modules that `path` imports, anywhere in the file."""
  known = set(modules)
  found = set()
  for node in ast.walk(ast.parse(path.read_text(), str(path))):
    if isinstance(node, ast.Import):
      names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
      # `from a.b import c` imports the module a.b.c when there is one, else names from a.b.
      names = [f'{node.module}.{alias.name}' if f'{node.module}.{alias.name}' in known
               else node.module for alias in node.names]
    else:
      continue
    found.update(name for name in names if name.split('.')[0] == package and name in known)
  return found


def import_graph(root: pathlib.Path, package: str) -> Dict[str, Set[str]]:
  modules = module_names(root, package)
  return {name: imports_of(path, package, modules) - {name} for name, path in modules.items()}


def layer_of(module: str) -> str:
  parts = module.split('.')
  return parts[1] if len(parts) > 1 else ''


def upward_imports(graph: Dict[str, Set[str]], allowed: Dict[str, Set[str]]) -> List[str]:
  """`importer -> imported` for each import that its layer may not make."""
  found = []
  for importer, imported in sorted(graph.items()):
    layer = layer_of(importer)
    if layer not in allowed:
      continue  # the package root
    for target in sorted(imported):
      if layer_of(target) not in allowed[layer] | {layer}:
        found.append(f'{importer} -> {target}')
  return found


def circles(graph: Dict[str, Set[str]]) -> List[List[str]]:
  """The strongly connected components of more than one node (Tarjan), each sorted."""
  index: Dict[str, int] = {}
  low: Dict[str, int] = {}
  stack: List[str] = []
  on_stack: Set[str] = set()
  found = []

  def visit(node):
    index[node] = low[node] = len(index)
    stack.append(node)
    on_stack.add(node)
    for target in sorted(graph.get(node, ())):
      if target not in index:
        visit(target)
        low[node] = min(low[node], low[target])
      elif target in on_stack:
        low[node] = min(low[node], index[target])
    if low[node] == index[node]:
      component = []
      while True:
        member = stack.pop()
        on_stack.discard(member)
        component.append(member)
        if member == node:
          break
      if len(component) > 1:
        found.append(sorted(component))

  for node in sorted(graph):
    if node not in index:
      visit(node)
  return sorted(found)


def folder_graph(graph: Dict[str, Set[str]]) -> Dict[str, Set[str]]:
  """The same imports between each layer's folders and modules: `ganpipe.components.trainer`,
  `ganpipe.components.artifacts`, `ganpipe.pipeline.runner`."""
  def folder(module):
    return '.'.join(module.split('.')[:3])
  folders: Dict[str, Set[str]] = {}
  for importer, imported in graph.items():
    folders.setdefault(folder(importer), set()).update(
        folder(target) for target in imported if folder(target) != folder(importer))
  return folders


GANPIPE = import_graph(pathlib.Path(ganpipe.__file__).parent, 'ganpipe')


def test_every_import_runs_down_the_layers():
  assert set(ALLOWED) == {layer_of(m) for m in GANPIPE} - {''}
  assert upward_imports(GANPIPE, ALLOWED) == []


def test_no_modules_import_each_other_in_a_circle():
  assert circles(GANPIPE) == []


def test_no_folders_import_each_other_in_a_circle():
  assert circles(folder_graph(GANPIPE)) == []


def test_the_checks_find_upward_imports_lazy_ones_and_circles(tmp_path):
  files = {
      'models/__init__.py': '',
      'models/net.py': 'from fake import pipeline\n',  # up
      'models/loss.py': 'def f():\n  from fake.pipeline import run\n',  # up, inside a function
      'pipeline/__init__.py': '',
      'pipeline/run.py': 'from fake.pipeline import plan\n',
      'pipeline/plan.py': 'import fake.pipeline.run\nfrom fake.models import net\n',
      'components/__init__.py': '',
      'components/a/__init__.py': '',
      'components/a/one.py': 'from fake.components.b import two\n',
      'components/b/__init__.py': '',
      'components/b/two.py': '',
      'components/b/three.py': 'from fake.components.a import one\n',
  }
  for name, text in files.items():
    (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / name).write_text(text)
  graph = import_graph(tmp_path, 'fake')
  allowed = {'models': set(), 'components': {'models'}, 'pipeline': {'components', 'models'}}
  assert upward_imports(graph, allowed) == [
      'fake.models.loss -> fake.pipeline.run', 'fake.models.net -> fake.pipeline']
  assert circles(graph) == [['fake.pipeline.plan', 'fake.pipeline.run']]
  assert circles(folder_graph(graph)) == [
      ['fake.components.a', 'fake.components.b'], ['fake.pipeline.plan', 'fake.pipeline.run']]


def test_no_module_is_over_400_lines():
  root = pathlib.Path(ganpipe.__file__).parent.parent
  long = {str(path.relative_to(root)): length
          for folder in ('ganpipe', 'tests', 'benchmarks')
          for path in (root / folder).rglob('*.py')
          if (length := len(path.read_text().splitlines())) > 400}
  assert long == {}, f'split these into modules of one idea each: {long}'


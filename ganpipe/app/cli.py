"""The `ganpipe` command-line tool: its parser, and what each subcommand does.

Importing this module and parsing a command line loads no TensorFlow, TFX or Beam (tests/app/
test_startup.py checks it): each command imports what it needs once it runs, and checks its
configuration first, so `--help`, a bad flag or a missing folder answers in about a second.
"""

import argparse
import contextlib
import os
import sys
import time
import traceback
from typing import List, Optional

from ganpipe.app import client_commands
from ganpipe.app import console
from ganpipe.app import grids
from ganpipe.app import rollout_command
from ganpipe.pipeline import config as config_lib
from ganpipe.pipeline import overrides as config_overrides
from ganpipe.serving import serve_command

EXIT_USAGE = 2
EXIT_FAILED = 1
_VERBOSE_HELP = 'show TFX logs and full tracebacks'


class _Parser(argparse.ArgumentParser):
  """An ArgumentParser that takes only whole flag names, for every subcommand too.

  argparse's default accepts any unambiguous prefix, so `--classifier.epoch 5` ran a pipeline as
  `--classifier.epochs 5`; and a prefix that is unambiguous today becomes an error, or another
  flag, when a flag is added.
  """

  def __init__(self, *args, **kwargs):
    kwargs.setdefault('allow_abbrev', False)
    super().__init__(*args, **kwargs)


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
  defaults = config_lib.PipelineConfig()
  described = config_overrides.field_help()
  group = parser.add_argument_group(
      'configuration', 'Override any configuration field; tuples are comma-separated, and '
      'none clears an optional field.')
  for name, _ in config_overrides.field_paths():
    value = defaults
    for part in name.split('.'):
      value = getattr(value, part)
    if isinstance(value, tuple):
      value = ','.join(str(v) for v in value)
    shown = 'none' if value is None or value == '' else value
    # argparse formats help with %, so a literal % in a description must be doubled.
    text = described[name].rstrip('.').replace('%', '%%')
    group.add_argument(f'--{name}', dest=f'override:{name}', metavar='VALUE', default=None,
                       help=f'{text} (default: {shown})')


def _config_from_args(args: argparse.Namespace) -> config_lib.PipelineConfig:
  hints = dict(config_overrides.field_paths())
  overrides = {}
  for key, text in vars(args).items():
    if key.startswith('override:') and text is not None:
      name = key[len('override:'):]
      overrides[name] = config_overrides.parse_value(text, hints[name], name)
  config = config_overrides.with_overrides(config_lib.get_config(small=args.small), overrides)
  if args.small:
    config = config_lib.small_for_image_size(config, keep=overrides)
  return config


def _build_parser() -> argparse.ArgumentParser:
  parser = _Parser(
      prog='ganpipe', description='TFX pipeline: Keras GAN + MLP classifier, served by TF Serving.')
  parser.add_argument('--verbose', action='store_true', help=_VERBOSE_HELP)
  commands = parser.add_subparsers(dest='command', metavar='COMMAND', required=True)

  run = commands.add_parser('run', help='run the pipeline',
                            description='Run the pipeline with TFX (BeamDagRunner by default).')
  run.add_argument('--small', action='store_true',
                   help='start from the small, quick configuration used by the tests')
  _add_config_flags(run)
  run.set_defaults(handler=_run)

  demo = commands.add_parser(
      'demo', help='run the pipeline, then serve the pushed models and query them over gRPC',
      description='What `make demo` runs: the pipeline, then a model server on the pushed models, '
                  'a few eval images classified and a grid generated over gRPC, then shutdown.')
  demo.add_argument('--small', action='store_true',
                    help='start from the small, quick configuration used by the tests')
  demo.add_argument('--num-images', type=client_commands.positive_int, default=8, metavar='N',
                    help='eval images to classify (default: %(default)s)')
  grids.add_scale_flag(demo, '--grid-scale')
  _add_config_flags(demo)
  demo.set_defaults(handler=_demo)

  status = commands.add_parser('status', help='show the latest run',
                               description='Summarise the latest run from ML Metadata.')
  status.add_argument('--small', action='store_true', help=argparse.SUPPRESS)
  status.add_argument('--json', action='store_true', help='print machine-readable JSON')
  _add_config_flags(status)
  status.set_defaults(handler=_status)

  lineage = commands.add_parser(
      'lineage', help='show what a pushed or published model was made from',
      description='Trace a serving version folder, a TF Hub module folder or any artifact URI '
                  'back through ML Metadata: every execution of its run that led to it, with '
                  'its settings and inputs, down to the ingested images.')
  lineage.add_argument('target', metavar='PATH',
                       help='e.g. outputs/serving/classifier/<version> or '
                            'outputs/hub/ganpipe/generator/<version>')
  lineage.add_argument('--small', action='store_true', help=argparse.SUPPRESS)
  lineage.add_argument('--json', action='store_true', help='print machine-readable JSON')
  _add_config_flags(lineage)
  lineage.set_defaults(handler=_lineage)

  publish = commands.add_parser(
      'publish', help='publish a module the pipeline published again, under another hub root',
      description='Publish the generator behind a TF Hub module folder that the pipeline wrote '
                  '(for example to a shared gs:// root): the same SavedModel, metrics and module '
                  'card, read from ML Metadata, as the next version under --to. With '
                  '--publish.hub_asset_url, the URL --to is served from, its documentation gets '
                  'the asset-path tfhub.dev requires.')
  publish.add_argument('module', metavar='MODULE_PATH',
                       help='a published version folder, e.g. outputs/hub/ganpipe/generator/1')
  publish.add_argument('--to', required=True, metavar='HUB_ROOT',
                       help='the hub root to publish under (a folder, gs:// or s3://)')
  publish.add_argument('--archive', action=argparse.BooleanOptionalAction, default=None,
                       help='also write <version>.tar.gz (default: as the pipeline did, and '
                            'always with --publish.hub_asset_url)')
  publish.add_argument('--small', action='store_true', help=argparse.SUPPRESS)
  _add_config_flags(publish)
  publish.set_defaults(handler=_publish)

  compile_kf = commands.add_parser(
      'compile-kubeflow', help='compile the pipeline to a Kubeflow Pipelines package',
      description='Compile the same create_pipeline() with KubeflowV2DagRunner, to a PipelineSpec '
                  '2.1.0 package for Kubeflow Pipelines 2.x and a PipelineJob for Vertex AI. The '
                  'pipeline root must be on gs://; the serving and hub roots on gs:// or on '
                  '--kubeflow.volume_claim. See ganpipe/kubeflow/README.md.')
  compile_kf.add_argument('--small', action='store_true', help=argparse.SUPPRESS)
  compile_kf.add_argument('--output', default='',
                          help='where to write the PipelineJob JSON; the package goes beside it, '
                               'as .yaml (default: --kubeflow.output_path)')
  _add_config_flags(compile_kf)
  compile_kf.set_defaults(handler=_compile_kubeflow)

  serve_command.add_parser(commands)
  client_commands.add_parsers(commands)
  rollout_command.add_parser(commands)
  for subcommand in commands.choices.values():
    # After the subcommand too: `ganpipe run ... --verbose`. SUPPRESS leaves the top-level
    # flag's value alone when it is not given here.
    subcommand.add_argument('--verbose', action='store_true', default=argparse.SUPPRESS,
                            help=_VERBOSE_HELP)
  return parser


def _run(args: argparse.Namespace) -> int:
  config = _config_from_args(args)
  from ganpipe.pipeline import runner  # pylint: disable=import-outside-toplevel
  runner.preflight(config)
  print(f'Running pipeline {config.name!r} on {config.data.dataset} with the {config.runner} '
        f'runner; outputs under {config.paths.pipeline_root}', flush=True)
  started = time.monotonic()
  from ganpipe.pipeline import store_lock  # pylint: disable=import-outside-toplevel
  try:
    with (contextlib.nullcontext() if args.verbose else
          console.without_worker_finalizer_errors()):
      summary, error = runner.run(config)
  except store_lock.StoreBusyError as busy:
    console.error(str(busy))
    return EXIT_FAILED
  print()
  if summary is not None:
    from ganpipe.pipeline import run_summary  # pylint: disable=import-outside-toplevel
    print(run_summary.format_summary(summary))
  print(f'Wall time: {time.monotonic() - started:.1f} s')
  if error is not None:
    if args.verbose:
      traceback.print_exception(error)
    where = ', '.join(summary.failed) if summary and summary.failed else 'the pipeline'
    console.error(f'{where} failed: {console.one_line(error)}' +
                  ('' if args.verbose else ' (run with --verbose for the traceback)'))
    return EXIT_FAILED
  if summary is not None and summary.failed:
    # TFX's local runner goes on past a node that fails without raising (a resolver, say), so
    # the run can end without an error although a node failed: a cron job must still see it.
    console.error(f'{", ".join(summary.failed)} failed; the run went on without '
                  f'{"them" if len(summary.failed) > 1 else "it"} (see the summary above)')
    return EXIT_FAILED
  return 0


def _demo(args: argparse.Namespace) -> int:
  code = _run(args)
  if code != 0:
    return code
  from ganpipe.app import demo as serving_demo  # pylint: disable=import-outside-toplevel
  return serving_demo.run(_config_from_args(args), sys.stdout, num_images=args.num_images,
                          grid_scale=args.grid_scale)


def _compile_kubeflow(args: argparse.Namespace) -> int:
  config = _config_from_args(args)
  # pylint: disable-next=import-outside-toplevel
  from ganpipe.kubeflow import compile as kubeflow_compile
  path = kubeflow_compile.compile_pipeline(config, args.output)
  print(f'Wrote the KFP v2 pipeline package {kubeflow_compile.kfp_package_path(path)} (for '
        f'Kubeflow Pipelines) and PipelineJob {path} (for Vertex AI Pipelines); image '
        f'{config.kubeflow.image}; runtime parameters: '
        f'{", ".join(kubeflow_compile.RUNTIME_PARAMETERS)}')
  return 0


def _no_store(config: config_lib.PipelineConfig) -> bool:
  """Whether the metadata store is missing, said before ML Metadata and TFX load (seconds)."""
  if '://' in config.paths.metadata_path or os.path.isfile(config.paths.metadata_path):
    return False
  console.error(f'no metadata store at {config.paths.metadata_path}: no run of pipeline '
                f'{config.name!r} wrote one there. Fix: run `ganpipe run` first, or pass '
                '--paths.metadata_path with the metadata.sqlite of a run')
  return True


def _status(args: argparse.Namespace) -> int:
  config = _config_from_args(args)
  if _no_store(config):
    return EXIT_FAILED
  from ganpipe.pipeline import run_summary  # pylint: disable=import-outside-toplevel
  from ganpipe.pipeline import runner  # pylint: disable=import-outside-toplevel
  try:
    summary = runner.summarize(config)
  except run_summary.StoreError as error:
    console.error(f'{error}. Fix: pass --paths.metadata_path with the metadata.sqlite of a run')
    return EXIT_FAILED
  if summary is None:
    console.error(f'no run of pipeline {config.name!r} in {config.paths.metadata_path}. '
                  'Fix: run `ganpipe run` first, or pass --paths.metadata_path')
    return EXIT_FAILED
  print(summary.to_json() if args.json else run_summary.format_summary(summary))
  return 0


def _lineage(args: argparse.Namespace) -> int:
  config = _config_from_args(args)
  if _no_store(config):
    return EXIT_FAILED
  from ganpipe.pipeline import lineage  # pylint: disable=import-outside-toplevel
  from ganpipe.pipeline import run_summary  # pylint: disable=import-outside-toplevel
  try:
    run_summary.open_store(config.paths.metadata_path)
  except run_summary.StoreError as error:
    console.error(f'{error}. Fix: pass --paths.metadata_path with the metadata.sqlite of a run')
    return EXIT_FAILED
  try:
    found = lineage.trace(config.paths.metadata_path, config.name, args.target)
  except lineage.LineageError as error:
    if '://' not in args.target and not os.path.exists(args.target):
      # A pushed version the pusher has since deleted is still traced from the store above; a
      # path that is neither there nor on disk is most likely mistyped.
      console.error(f"nothing is at '{args.target}', and no artifact in "
                    f'{config.paths.metadata_path} was there. Fix: pass a serving version folder '
                    '(outputs/serving/<model>/<version>), a TF Hub module folder '
                    '(outputs/hub/<publisher>/<module>/<version>) or an artifact URI')
    else:
      console.error(f'{error}. Fix: pass --paths.metadata_path with the store of the run that '
                    'made it')
    return EXIT_FAILED
  print(found.to_json() if args.json else lineage.format_lineage(found))
  return 0


def _publish(args: argparse.Namespace) -> int:
  config = _config_from_args(args)
  asset_url = config.publish.hub_asset_url
  if asset_url and args.archive is False:
    console.error('--publish.hub_asset_url names where the archive is served, and --no-archive '
                  'makes none. Fix: drop --no-archive, or --publish.hub_asset_url')
    return EXIT_USAGE
  if _no_store(config):
    return EXIT_FAILED
  from ganpipe.pipeline import lineage  # pylint: disable=import-outside-toplevel
  from ganpipe.pipeline import publish  # pylint: disable=import-outside-toplevel
  try:
    publication = publish.republish(config.paths.metadata_path, config.name, args.module,
                                    args.to, args.archive, asset_url)
  except (lineage.LineageError, publish.PublishError) as error:
    console.error(f'{error}. Fix: pass a module folder that `ganpipe run` published, and its '
                  '--paths.metadata_path')
    return EXIT_FAILED
  print(f'Published version {publication.version} to {publication.path}' +
        (f' and {publication.archive_path}' if publication.archive_path else ''))
  return 0


def main(argv: Optional[List[str]] = None) -> int:
  args = _build_parser().parse_args(argv)
  if not args.verbose:
    console.quiet_environment()
  try:
    console.configure_logging(args.verbose)
    return args.handler(args)
  except config_lib.ConfigError as error:
    if args.verbose:
      traceback.print_exc()
    console.error(str(error))
    return EXIT_USAGE
  except KeyboardInterrupt:
    console.error('interrupted')
    return 130


if __name__ == '__main__':
  sys.exit(main())

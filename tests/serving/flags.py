"""`ganpipe serve`'s flags parsed as the command parses them, for the tests of single flags."""

import argparse

from ganpipe.serving import config as config_lib
from ganpipe.serving import serve_command


def serve_args(*flags: str, base_path: str = '/models/m') -> argparse.Namespace:
  """`ganpipe serve --model_base_path base_path *flags` parsed; SystemExit for a usage error."""
  parser = argparse.ArgumentParser()
  serve_command.add_arguments(parser)
  return parser.parse_args(['--model_base_path', base_path, *flags])


def serve_options(*flags: str, base_path: str = '/models/m') -> config_lib.ServerOptions:
  """The ServerOptions `ganpipe serve --model_base_path base_path *flags` runs with.

  Raises SystemExit for a usage error, and ConfigError for a value the server refuses.
  """
  return serve_command.options_from_args(serve_args(*flags, base_path=base_path))

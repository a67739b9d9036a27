"""What `ganpipe` prints: progress lines and the noise it leaves out."""

import logging
import subprocess
import sys

from ganpipe.app import console


def _record(name: str, level: int, message: str) -> logging.LogRecord:
  return logging.LogRecord(name, level, __file__, 1, message, None, None)


def test_known_noise_is_dropped_and_other_warnings_kept():
  noise_filter = console.KnownNoiseFilter()
  beam_log = 'apache_beam.runners.portability.local_job_service'
  # As the multi-processing DirectRunner forwards a starting worker's warning.
  assert not noise_filter.filter(_record(
      beam_log, logging.WARNING, 'Worker: severity: WARN timestamp {   seconds: 1796420150 } '
      'message: "No semi_persistent_directory found:  User registered objects (e.g. schema, '
      'logical type) throughregisteries may not be effective"'))
  assert not noise_filter.filter(_record('absl', logging.WARNING,
                                         'property_predicate is not supported'))
  assert noise_filter.filter(_record(beam_log, logging.ERROR,
                                     'Worker: severity: ERROR message: "Error processing bundle"'))
  assert noise_filter.filter(_record('tfx', logging.WARNING, 'Disk is full'))


def test_a_failure_raised_on_to_the_cli_is_not_also_logged():
  reraised = console.ReraisedErrorFilter()
  try:
    raise ValueError('ingestion rejected 3 of 27 records')
  except ValueError:
    beam_record = logging.LogRecord('apache_beam.runners.common', logging.ERROR, __file__, 1,
                                    'ingestion rejected 3 of 27 records', None, sys.exc_info())
  assert not reraised.filter(beam_record)
  assert not reraised.filter(_record('absl', logging.ERROR, 'Execution 12 failed.'))
  # Beam's other errors, and errors without the exception, still show.
  assert reraised.filter(_record('apache_beam.runners.common', logging.ERROR, 'Bundle lost'))
  assert reraised.filter(_record('absl', logging.ERROR, 'Execution 12 failed. Disk full'))


FINALIZER_ERROR = (
    'Exception ignored in: <function AtomicFunction.__del__ at 0x7f29071fd940>\n'
    'Traceback (most recent call last):\n'
    '  File "/venv/site-packages/tensorflow/python/eager/polymorphic_function/'
    'atomic_function.py", line 291, in __del__\n'
    "TypeError: 'NoneType' object is not subscriptable\n")


def test_child_processes_finalizer_errors_are_left_out_of_stderr(capfd):
  # As a Beam worker process prints it when it exits after Transform (seen in `make demo`).
  other_error = FINALIZER_ERROR.replace('TypeError', 'RuntimeError')
  script = ('import sys; sys.stderr.write(sys.argv[1] + "worker log line\\n" + sys.argv[1] + '
            'sys.argv[2])')
  with console.without_worker_finalizer_errors():
    subprocess.run([sys.executable, '-c', script, FINALIZER_ERROR, other_error], check=True)
    print('from this process', file=sys.stderr)
  assert capfd.readouterr().err == 'worker log line\n' + other_error + 'from this process\n'

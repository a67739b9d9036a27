"""What `ganpipe` prints: progress lines and the noise it leaves out."""

import logging

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

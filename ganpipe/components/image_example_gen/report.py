"""The ingestion report: what was read, what was rejected and why, and the bad-record limit."""

import collections
import json
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

import apache_beam as beam
import tensorflow as tf

from ganpipe.components.image_example_gen import records
from ganpipe.models import features

REPORT_FILE = 'ingestion_report.json'
REJECTED_FILES = 'rejected'      # rejected-NNNNN-of-NNNNN.jsonl: every rejected record
_COUNTS = '.counts'              # small intermediate files the Beam pipeline writes
# The report lists this many rejected records; the .jsonl files list them all.
MAX_LISTED = 10_000


class IngestionError(RuntimeError):
  """Too many records were rejected, or none was usable, or the class labels contradict."""


def _write_json(pcoll: beam.PCollection, path: str, label: str) -> None:
  _ = (pcoll
       | f'{label}ToJson' >> beam.Map(json.dumps, sort_keys=True)
       | f'{label}Write' >> beam.io.WriteToText(path, shard_name_template='', num_shards=1))


def _label_and_name(example: tf.train.Example) -> Tuple[int, str]:
  feature = example.features.feature
  return (int(feature[features.LABEL_KEY].int64_list.value[0]),
          feature[features.LABEL_NAME_KEY].bytes_list.value[0].decode('utf-8'))


def write_counts(examples_by_split: Dict[str, beam.PCollection], rejected: beam.PCollection,
                 uri: str, collect_classes: bool) -> None:
  """Adds the steps that record counts, rejections and (optionally) class pairs under `uri`."""
  counts = os.path.join(uri, _COUNTS)
  _ = (rejected
       | 'RejectedToJson' >> beam.Map(lambda r: r.to_json())
       | 'WriteRejected' >> beam.io.WriteToText(os.path.join(uri, REJECTED_FILES),
                                                file_name_suffix='.jsonl'))
  by_reason = (rejected
               | 'Reason' >> beam.Map(lambda r: r.reason)
               | 'CountReasons' >> beam.combiners.Count.PerElement()
               | 'ReasonsToDict' >> beam.combiners.ToDict())
  _write_json(by_reason, os.path.join(counts, 'rejected_by_reason.json'), 'Reasons')
  for split, examples in examples_by_split.items():
    total = examples | f'Count[{split}]' >> beam.combiners.Count.Globally()
    _write_json(total, os.path.join(counts, f'accepted-{split}.json'), f'Accepted[{split}]')
  if collect_classes:
    pairs = ([examples for examples in examples_by_split.values()]
             | 'AllExamples' >> beam.Flatten()
             | 'LabelAndName' >> beam.Map(_label_and_name)
             | 'DistinctClasses' >> beam.Distinct()
             | 'ClassesToList' >> beam.combiners.ToList())
    _write_json(pairs, os.path.join(counts, 'classes.json'), 'Classes')


def _read_json(path: str) -> Any:
  with tf.io.gfile.GFile(path) as f:
    return json.load(f)


def classes_from_data(uri: str) -> List[str]:
  """Class names from the (label, name) pairs seen in the data.

  Raises:
    IngestionError: a label has two names, or the labels are not 0..n-1.
  """
  names: Dict[int, str] = {}
  for label, name in sorted(_read_json(os.path.join(uri, _COUNTS, 'classes.json'))):
    if label in names and names[label] != name:
      raise IngestionError(f'label {label} is named both {names[label]!r} and {name!r}; each '
                           'class id needs one name')
    names[label] = name
  missing = sorted(set(range(max(names, default=-1) + 1)) - set(names))
  if missing:
    raise IngestionError(f'labels must be the class ids 0..{max(names)}, but '
                         f'{missing[:10]} never occur; relabel the data')
  return [names[label] for label in range(len(names))]


def _extension(path: str) -> str:
  return os.path.splitext(os.path.basename(path))[1].lower() or '(no extension)'


def assemble(uri: str, splits: List[str], class_names: List[str],
             warnings: List[records.Rejected], max_bad_fraction: float,
             skipped_files: Sequence[str] = ()) -> Dict[str, Any]:
  """Builds `{uri}/ingestion_report.json` from the pipeline's counts; returns the report.

  `skipped_files` are the files a source did not read, not being named as images: they are no
  records, and count neither as accepted nor as rejected.
  """
  counts = os.path.join(uri, _COUNTS)
  accepted = {split: int(_read_json(os.path.join(counts, f'accepted-{split}.json')))
              for split in splits}
  by_reason = dict(sorted(_read_json(os.path.join(counts, 'rejected_by_reason.json')).items(),
                          key=lambda item: (-item[1], item[0])))
  rejected_total = sum(by_reason.values())
  total = sum(accepted.values()) + rejected_total
  listed = []
  for path in sorted(tf.io.gfile.glob(os.path.join(uri, f'{REJECTED_FILES}-*.jsonl'))):
    with tf.io.gfile.GFile(path) as f:
      for line in f:
        if len(listed) >= MAX_LISTED:
          break
        listed.append(json.loads(line))
  report = {
      'total_records': total,
      'accepted': sum(accepted.values()),
      'accepted_by_split': accepted,
      'rejected': rejected_total,
      'rejected_fraction': rejected_total / total if total else 0.0,
      'max_bad_fraction': max_bad_fraction,
      'rejected_by_reason': by_reason,
      'classes': class_names,
      'warnings': [w.to_dict() for w in warnings],
      # Class folders without an image: left out of the class map.
      'empty_classes': sorted({os.path.basename(w.source) for w in warnings
                               if w.reason == records.EMPTY_CLASS_FOLDER}),
      'skipped_files': len(skipped_files),
      'skipped_by_extension': dict(sorted(collections.Counter(
          _extension(path) for path in skipped_files).items())),
      'skipped_files_listed': sorted(skipped_files)[:MAX_LISTED],
      'rejected_records': sorted(listed, key=lambda r: (r['reason'], r['source'])),
      'rejected_records_complete': len(listed) == rejected_total,
  }
  with tf.io.gfile.GFile(os.path.join(uri, REPORT_FILE), 'w') as f:
    json.dump(report, f, indent=2)
  return report


# Where a failed ingestion's report is kept: beside its artifact folder, which TFX's launcher
# deletes when the executor fails (`outputs_utils.remove_output_dirs` in
# tfx/orchestration/portable/launcher.py, `_run_executor`), so that the file the error names
# exists after the failure.
FAILED_SUFFIX = '.failed'


def kept_uri(uri: str) -> str:
  """`<artifact uri>.failed`: a sibling of the report's artifact folder."""
  return uri.rstrip('/') + FAILED_SUFFIX


def keep(uri: str) -> str:
  """Copies the report and the rejected-record files to `kept_uri(uri)`; returns the report's
  new path."""
  kept = kept_uri(uri)
  tf.io.gfile.makedirs(kept)
  names = [REPORT_FILE] + [os.path.basename(path) for path in tf.io.gfile.glob(
      os.path.join(uri, f'{REJECTED_FILES}-*.jsonl'))]
  for name in names:
    tf.io.gfile.copy(os.path.join(uri, name), os.path.join(kept, name), overwrite=True)
  return os.path.join(kept, REPORT_FILE)


def check(report: Dict[str, Any], uri: str) -> None:
  """Raises IngestionError when nothing was usable or too much was rejected.

  The report and the rejected records are first copied where they outlive the failed execution
  (`keep`), and the error names that copy.
  """
  if report['accepted'] and report['rejected_fraction'] <= report['max_bad_fraction']:
    return
  where = keep(uri)
  if report['accepted'] == 0:
    reasons = _worst(report['rejected_by_reason'])
    raise IngestionError(f'no usable images among {report["total_records"]} records'
                         + (f' (worst reasons: {reasons})' if reasons else '')
                         + f'. See {where}.')
  raise IngestionError(
      f'ingestion rejected {report["rejected"]} of {report["total_records"]} records '
      f'({report["rejected_fraction"]:.1%}), above the limit of '
      f'{report["max_bad_fraction"]:.1%}. Worst reasons: '
      f'{_worst(report["rejected_by_reason"])}. Every rejected record is listed in {where}. '
      'Fix: repair or remove those files, or raise --data.max_bad_fraction.')


def _worst(by_reason: Dict[str, int], top: int = 3) -> str:
  return ', '.join(f'{reason} {count}' for reason, count in list(by_reason.items())[:top])


def load(uri: str) -> Optional[Dict[str, Any]]:
  """The report at `uri`, or None if there is none."""
  path = os.path.join(uri, REPORT_FILE)
  return _read_json(path) if tf.io.gfile.exists(path) else None

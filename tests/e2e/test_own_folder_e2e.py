"""End to end on a user's own image folder, written class by class, against the built-in digits.

The same 1,797 digits, as PNG files in ten class folders, must give the generator evaluator the
same kind of real reference as the built-in (interleaved) digits do, with the same classifier and
sample size. Then a re-run that changes only the classifier must not push or publish the
unchanged generator again.
"""

import glob
import json
import os
import re
import subprocess
import sys

import pytest

from tests import image_data

pytestmark = pytest.mark.e2e

GANPIPE = os.path.join(os.path.dirname(sys.executable), 'ganpipe')
FOLDER_FLAGS = ('--data.dataset', 'folder', '--data.image_size', '8,8', '--data.channels', '1')
# The default classifier, for both sources: `--small`'s (64 units, 8 epochs) is too unsure of
# real digits for their score to approach the class count (4.5 of 10 on either source).
CLASSIFIER_FLAGS = ('--classifier.hidden_units', '256,128', '--classifier.epochs', '100')


def _ganpipe(root, *flags):
  paths = ['--paths.pipeline_root', str(root / 'pipeline'),
           '--paths.metadata_path', str(root / 'metadata.sqlite'),
           '--paths.serving_root', str(root / 'serving'), '--paths.hub_root', str(root / 'hub')]
  return subprocess.run([GANPIPE, 'run', '--small', *paths, *CLASSIFIER_FLAGS, *flags],
                        capture_output=True,
                        text=True, check=False, timeout=1500, stdin=subprocess.DEVNULL)


def _generator_metrics(root):
  """metrics.json of each GeneratorEvaluator execution, oldest first."""
  found = []
  for path in sorted(glob.glob(str(root / 'pipeline' / 'generator_evaluator' / 'evaluation' / '*'
                                   / 'metrics.json')),
                     key=lambda p: int(os.path.basename(os.path.dirname(p)))):
    with open(path) as f:
      found.append(json.load(f))
  return found


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
  folder_root = tmp_path_factory.mktemp('own_folder')
  data = folder_root / 'my-digits'
  # Every digit, written class by class as a user's folder is: digit_0/0000.png, ...
  written = image_data.write_class_folders(str(data), {f'digit_{d}': 1000 for d in range(10)})
  for digit in range(10):
    (data / f'digit_{digit}' / '.DS_Store').write_bytes(b'\0\0\0\1Bud1')
  (data / 'digit_unused').mkdir()
  (data / 'notes.txt').write_text('where these came from')
  flags = (*FOLDER_FLAGS, '--data.data_dir', str(data))
  folder = _ganpipe(folder_root, *flags)
  # Only the classifier changes: the GAN's training is cached, its generator judged again.
  changed = _ganpipe(folder_root, *flags, '--classifier.epochs', '99')
  digits_root = tmp_path_factory.mktemp('builtin_digits')
  digits = _ganpipe(digits_root)
  return {'written': written, 'folder_root': folder_root, 'folder': folder,
          'changed': changed, 'digits_root': digits_root, 'digits': digits}


def test_a_folder_written_class_by_class_gets_the_reference_of_the_interleaved_digits(runs):
  for name in ('folder', 'digits'):
    assert runs[name].returncode == 0, runs[name].stdout + runs[name].stderr
  assert sum(runs['written'].values()) == 1797
  folder = _generator_metrics(runs['folder_root'])[0]
  digits = _generator_metrics(runs['digits_root'])[0]
  print('real-vs-real, folder:', {k: folder[k] for k in sorted(folder) if k.startswith('real')},
        'digits:', {k: digits[k] for k in sorted(digits) if k.startswith('real')})
  assert folder['num_samples'] == digits['num_samples'] == 300
  assert folder['distance_meaningful'] and digits['distance_meaningful']
  # Real eval images, well classified, score near the class count: at least 90% of 10.
  assert folder['real_classifier_score'] >= 9.0, folder
  assert digits['real_classifier_score'] >= 9.0, digits
  assert abs(folder['real_classifier_score'] - digits['real_classifier_score']) < 0.5
  ratio = folder['real_frechet_classifier_distance'] / digits['real_frechet_classifier_distance']
  assert 0.5 < ratio < 2.0, (folder, digits)


def test_the_summary_names_the_empty_class_and_the_skipped_files(runs):
  out = runs['folder'].stdout
  assert runs['folder'].returncode == 0, out + runs['folder'].stderr
  assert re.search(r'data: 1797 images \(train 14\d\d, eval 3\d\d\); 0 rejected; 11 files '
                   r'skipped, not named as images', out), out
  assert 'empty class folders, left out of the class map: digit_unused' in out
  (class_map,) = glob.glob(str(runs['folder_root'] / 'pipeline' / 'image_example_gen' /
                               'class_map' / '*' / 'class_map.json'))
  with open(class_map) as f:
    assert [c['name'] for c in json.load(f)['classes']] == [f'digit_{d}' for d in range(10)]


def test_the_hub_card_names_the_folder_and_its_images(runs):
  assert runs['folder'].returncode == 0, runs['folder'].stderr
  readme = (runs['folder_root'] / 'hub' / 'ganpipe' / 'generator' / '1.md').read_text()
  assert readme.splitlines()[2].startswith('A dense GAN generator trained on my-digits:')
  assert '<!-- dataset:' not in readme  # tfhub.dev's tags/dataset.yaml has no such id
  assert re.search(r'Trained on the image folder `my-digits` \(`\S+/my-digits`\): 1,797 images '
                   r'in 10 classes \(digit_0, .*digit_9\), 1,4\d\d for training and 3\d\d for '
                   'evaluation.', readme), readme
  assert 'at\nmost 1,024 images per call' in readme


def test_an_unchanged_generator_is_neither_pushed_nor_published_again(runs):
  changed = runs['changed']
  assert changed.returncode == 0, changed.stdout + changed.stderr
  summary = changed.stdout[changed.stdout.index('Run '):]
  assert re.search(r'gan_trainer\s+cached', summary), summary
  assert re.search(r'generator_evaluator\s+complete', summary), summary
  generator = summary[summary.index('generator: '):]
  assert re.search(r'unchanged, not pushed \(version \d+ at \S+ already serves this model\)',
                   generator), generator
  assert 'unchanged, not published to TF Hub (version 1 at ' in generator
  root = runs['folder_root']
  assert len(glob.glob(str(root / 'serving' / 'generator' / '*'))) == 1
  assert sorted(os.listdir(root / 'hub' / 'ganpipe' / 'generator')) == ['1', '1.md', '1.tar.gz']
  # The classifier did change, and was pushed as a new version.
  assert len(glob.glob(str(root / 'serving' / 'classifier' / '*'))) == 2

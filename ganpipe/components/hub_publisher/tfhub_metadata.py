"""tfhub.dev's documentation rules as they bear on our module: tag ids, asset URL, publisher page.

tfhub.dev checked every contribution with `tools/validator.py` of github.com/tensorflow/tfhub.dev,
whose tag values are the `id`s in that repository's `tags/*.yaml`. What follows maps our names onto
those ids as they stand at its last commit, 81fdea8ffa53b5acbd66a012d17fb8f9602c714b (2024-03-18);
tests/components/hub_publisher/tfhub_rules.py records the rules and lists themselves. Plain Python,
with no TensorFlow import, so that the configuration can check its values against it.
"""

import re
from typing import Dict, List, Optional, Tuple
import urllib.parse

from ganpipe.components.image_example_gen import options as ingestion
from ganpipe.models import hparams

TASK = 'image-generator'
FORMAT = 'saved_model_2'  # a TF2 SavedModel, loaded with hub.load
ASSET_SUFFIX = '.tar.gz'

# tags/license.yaml: its ids are the SPDX identifiers, lower-cased. The ones it lists, by the
# SPDX identifier a user would pass (matched without regard to case). Any other license (CC0-1.0,
# AGPL-3.0, ...) gets no license tag: none fits, and `custom` claims a licence written for the
# module, which a standard licence is not. The card's License section still names it.
_SPDX_LICENSES = ('Apache-2.0', 'BSD-2-Clause', 'BSD-3-Clause', 'GPL-2.0', 'GPL-3.0', 'LGPL-2.0',
                  'LGPL-2.1', 'LGPL-3.0', 'MIT', 'MPL-2.0', 'CDDL-1.0', 'EPL-2.0', 'CC-BY-NC-4.0',
                  'CC-BY-SA-4.0')
LICENSE_TAGS: Dict[str, str] = {name.lower(): name.lower() for name in _SPDX_LICENSES}

# tags/network_architecture.yaml has `gan` and `cnn` and no entry for an MLP or for DCGAN itself
# (`network-architecture` may be repeated, so a DCGAN is both).
ARCHITECTURE_TAGS: Dict[str, Tuple[str, ...]] = {
    hparams.DENSE: ('gan',),
    hparams.DCGAN: ('gan', 'cnn'),
}

# tags/dataset.yaml lists no MNIST of any kind: neither scikit-learn's digits (the UCI optical
# handwritten digits) nor Fashion-MNIST is there, and a user's own files (folder, idx, npz,
# tfrecord) are no listed dataset either. Its catch-all `other` says nothing a reader can use, so
# every source leaves the `dataset` tag out, and the card's prose names the data instead.
DATASET_TAGS: Dict[str, Tuple[str, ...]] = {source: () for source in ingestion.SOURCES}

# A tfhub.dev publisher id: the validator's handle patterns allow lower-case letters, digits
# and '-' only, and it looks for the publisher page at <publisher>/<publisher>.md.
PUBLISHER_ID = re.compile(r'[a-z0-9-]+')
# The asset host whose robots.txt the validator knows forbids its fetch.
_UNFETCHABLE_HOSTS = ('github.com',)


def metadata_tags(architecture: str, dataset: str, license_name: str,
                  asset_path: Optional[str]) -> List[Tuple[str, str]]:
  """The card's `<!-- key: value -->` tags, in order: only values in tfhub.dev's lists.

  Args:
    architecture: our GAN architecture (dense, dcgan).
    dataset: our ingestion source (digits, fashion-mnist, folder, ...).
    license_name: the license, as an SPDX identifier.
    asset_path: the URL the archive is served from; None leaves the (required) tag out.
  """
  tags = [('asset-path', asset_path)] if asset_path else []
  tags += [('task', TASK), ('fine-tunable', 'true'), ('format', FORMAT)]
  license_tag = LICENSE_TAGS.get(license_name.strip().lower())
  if license_tag:
    tags.append(('license', license_tag))
  tags += [('network-architecture', tag) for tag in ARCHITECTURE_TAGS.get(architecture, ())]
  tags += [('dataset', tag) for tag in DATASET_TAGS.get(dataset, ())]
  return tags


def asset_url_problem(url: str) -> Optional[str]:
  """Why `url` cannot be the URL a hub root is served from; None when it can.

  The archive's URL, `<url>/<publisher>/<module>/<version>.tar.gz`, goes into a one-line
  markdown comment and is fetched by the validator (urllib) and by `hub.load`.
  """
  parsed = urllib.parse.urlsplit(url)
  if parsed.scheme not in ('http', 'https') or not parsed.hostname:
    return f'must be an http:// or https:// URL, got {url!r}'
  if re.search(r'[?#\s]|-->', url):
    return f'must be a plain URL without query, fragment, spaces or "-->", got {url!r}'
  if parsed.hostname in _UNFETCHABLE_HOSTS:
    return (f"{parsed.hostname}'s robots.txt forbids fetching its files, so tfhub.dev's "
            f'validator refuses them; got {url!r}')
  return None


def asset_path(asset_url: str, publisher: str, module_name: str, version: int) -> Optional[str]:
  """Where a version's archive is served from, when its hub root is served at `asset_url`."""
  if not asset_url:
    return None
  return f'{asset_url.rstrip("/")}/{publisher}/{module_name}/{version}{ASSET_SUFFIX}'


def render_publisher_page(publisher: str) -> str:
  """`<publisher>/<publisher>.md`, which tfhub.dev requires beside every publisher's modules.

  The handle line, a one-line description, then sections: a publisher page takes no tags.
  """
  return f'''# Publisher {publisher}
Generators published with ganpipe.

## {publisher}

GAN generators that ganpipe, a TFX pipeline, trained, evaluated and published as TF2
SavedModels, each documented with its evaluation metrics.
'''

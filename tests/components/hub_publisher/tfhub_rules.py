"""tfhub.dev's validator's rules for a TF2 module's documentation and archive, recorded as data.

Read from github.com/tensorflow/tfhub.dev at its last commit, VALIDATOR_COMMIT (2024-03-18):
tools/validator.py (the handle lines, documentation paths, tags and archive rules),
tools/yaml_parser.py (a tag value must be an `id` of its tags/*.yaml file) and the tags/*.yaml
lists. tfhub.dev's CI ran the validator on each changed documentation file (the
contributions-validator workflow), which also downloads the `asset-path` and checks the archive.
tfhub_checker.py applies these rules; none of the validator's code is copied.
"""

VALIDATOR_REPOSITORY = 'https://github.com/tensorflow/tfhub.dev'
VALIDATOR_COMMIT = '81fdea8ffa53b5acbd66a012d17fb8f9602c714b'

# First lines, as regular expressions: a TF2 model's documentation, and a publisher page.
PUBLISHER_ID = r'[a-z\d-]+'
MODEL_NAME = r'[\w.-]+(?:/[\w.-]+)*'
MODULE_HANDLE_LINE = (rf'# Module (?P<publisher>{PUBLISHER_ID})/(?P<name>{MODEL_NAME})/'
                      r'(?P<version>\d+)')
PUBLISHER_HANDLE_LINE = rf'# Publisher (?P<publisher>{PUBLISHER_ID})'

# Where each lives, relative to the documentation root (assets/docs in tfhub.dev's repository).
MODULE_DOC_PATHS = ('{publisher}/{name}/{version}.md', '{publisher}/models/{name}/{version}.md')
PUBLISHER_PAGE_PATH = '{publisher}/{publisher}.md'

# After the handle line: an optional blank line, then a description of one or more lines (ended
# by a blank line or the first tag), then the tags, one `<!-- key: value -->` a line, blank lines
# and publishers' `[![Icon URL]]` lines allowed among them, up to the first line starting '#'.
ICON_LINE_PREFIX = '[![Icon URL]]'

# Tags of a TF2 model's documentation. A publisher page takes none.
MODULE_REQUIRED_TAGS = frozenset({'asset-path', 'fine-tunable', 'format', 'task'})
MODULE_OPTIONAL_TAGS = frozenset({'network-architecture', 'colab', 'dataset', 'language',
                                  'license', 'interactive-visualizer'})
# Only these may be given more than once.
REPEATABLE_TAGS = frozenset({'dataset', 'language', 'task', 'network-architecture'})
FORMATS = ('hub', 'saved_model', 'saved_model_2')
TASK_PREFIXES = ('image-', 'text-', 'audio-', 'video-')

# The asset: one URL ending in .tar.gz, not on github.com (its robots.txt forbids the fetch).
ASSET_SUFFIX = '.tar.gz'
UNFETCHABLE_ASSET_PREFIXES = ('https://github.com/', 'http://github.com/')
# Every regular file in the archive, by its normalised path: made of parts that each start with a
# word character or '-' and go on with word characters and -!',_.=:% or space, separated by '/';
# and matching one of these fnmatch patterns ('*' crosses '/'). At least one saved_model.pb or
# saved_model.pbtxt, and each must parse as a SavedModel proto.
ARCHIVE_NAME_PART = r"[\w-][\w\-!',.=:% ]*"
ARCHIVE_PATTERNS = ('saved_model.pb', 'saved_model.pbtxt', 'tfhub_module.pb', 'keras_metadata.pb',
                    'assets/*', 'assets.extra/*', 'variables/variables.*', 'fingerprint.pb')

# The values each enumerated tag takes: the `id`s of its tags/*.yaml, in the file's order. The
# other tags (language, interactive-visualizer, and the URL tags colab and demo) are not recorded:
# the checker refuses documentation that uses them rather than pass it unchecked.
TAG_VALUES = {
    'license': tuple('''
apache-2.0 bsd-2-clause bsd-3-clause gpl-2.0 gpl-3.0 lgpl-2.0 lgpl-2.1 lgpl-3.0 mit mpl-2.0
cddl-1.0 epl-2.0 cc-by-nc-4.0 cc-by-sa-4.0 custom
'''.split()),
    'network-architecture': tuple('''
amoebanet-a-n18-f448 bert bigan bigbigan biggan biggan-deep centernet cnn conformer dan
deeplab-mobilenetv2-ade20k-train deeplab-mobilenetv2-coco-voc-trainval
deeplab-mobilenetv2-dm05-coco-voc-trainval deeplab-mobilenetv3-large-cityscapes-trainfine
deeplab-xception65-ade20k-train deeplab-xception65-cityscapes-trainfine
deeplab-xception65-coco-voc-trainaug delf efficientdet efficientnet efficientnet-b0
efficientnet-b1 efficientnet-b2 efficientnet-b3 efficientnet-b4 efficientnet-b5 efficientnet-b6
efficientnet-b7 efficientnet-v2 elmo fastdepth faster-r-cnn gan hrnet-v2-w48 i3d
inception-resnet-v2 inception-v1 inception-v2 inception-v3 inception-v4 keywordspottingnet
mask-r-cnn midas mobilebert-uncased-l-24-h-128-b-512-a-4-f-4-opt mobilebert mobilebert-edgetpu-s
mobilenet mobilenet-v1 mobilenet-v2 mobilenet-v3 mobilevit movinet multiband-melgan multiple
nasnet-a-large nasnet-a-mobile nnlm other pnasnet-5-large progressive-gan regnety reqa resnet
resnet-152 resnet-cifar resnet-v1-101 resnet-v1-152 resnet-v1-200 resnet-v1-50 resnet-v2-101
resnet-v2-152 resnet-v2-50 resnet101-v2 resnet101x3-v2 resnet152x4-v2 resnet19 resnet50-v2
resnet50x3-v2 retinanet rnn s3d s3d-g silero-stt ssd ssd-mobilenet-v1 ssd-mobilenet-v2
ssd-mobilenet-v2-fpn ssd-spaghettinet-edgetpu-large swivel tacotron2 transformer transformer-xl
tsm-resnet50 tsm-resnet50x2 tvn-1 tvn-2 tvn-3 tvn-mobile-1 ulmfit unet vae vgg-style videoflow
wae wav2vec2 wide-resnet-40-8 word2vec-skip-gram wrn-106 yolo-v5 bit swin-transformer
video-swin-transformer vit mixer nnclr convmixer tnt tridentnet fcos fsaf regnetx yolo convnext
deit cait xcit maxim mosaic
'''.split()),
    'dataset': tuple('''
3dmovies 1-billion-word-benchmark ade20k apolloscape audioset ava bair
bair-robot-pushing-dataset bbc-xsum bdd birds-or-bicycles blendedmvs bookscorpus camvid cifar-10
cifar-100 cnn-dailymail-summarization coco-2017 cord-19 celeba celeba-hq charades
chinese-treebank-6-0 cityscapes clue-web commoncrawl dagm2007 dakshina diml-indoor discofuse
div2k google-news gigaword-summarization giga5 hrwsi idd imagenet imagenet-ilsvrc-2012-cls
imagenet-21k imet-collection-2019 inaturalist inaturalist-inat-2017
inaturalist-and-plants-subset-of-imagenet-21k internal-agripredict-dataset irs isaid isprs kth
kinetics-400 kinetics-600 kitti koniq-10k librilight librispeech ljspeech lsun-bedroom lol
mapillary megadepth mnli multilingual-wikipedia multiple natural-questions nyu-depth-v2
noaa-pifsc-harp openimagesv4 paq-2-piq pascal-context pascal-voc-2012 plant-village pmindia
medline-pubmed redweb qnli qqp silero-de silero-en silero-es spaq squad squad-2-0 sst-2 stories
svhn thorsten tartanair translation twitter wiki40b wikipedia wikipedia-and-bookscorpus
wikisplit-dataset wmt14 wmt16 wsvd xeno-canto youtube-8m scannet stl10 suim sunrgbd vgallery
vimeo-90k vkitti2 cppe-5 other
'''.split()),
    'task': tuple('''
audio-command-detection audio-embedding audio-event-classification audio-paralinguistics
audio-pitch-extraction audio-speech-synthesis audio-synthesis audio-stt image-aesthetic-quality
image-augmentation image-classification image-classification-logits image-classifier
image-depth-estimation image-extrapolation image-feature-vector image-frame-interpolation
image-generator image-object-detection image-others image-pose-detection image-rnn-agent
image-segmentation image-style-transfer image-super-resolution image-text-detection
image-text-recognition text-sequence-alignment text-classification text-embedding
text-generation text-language-model text-preprocessing text-question-answering
text-retrieval-question-answering text-segmentation text-to-mel video-audio-text
video-classification video-generation video-text image-denoising image-dehazing image-deraining
image-deblurring image-enhancement video-feature-extraction
'''.split()),
}

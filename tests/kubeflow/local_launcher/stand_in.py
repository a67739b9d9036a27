"""Stand-in tasks for the launcher's tests: a container command that records what it received."""

import json
import os

import yaml

# A stand-in for TFX's container entry points: `python -c TASK {{$}} ROLE`. It records what it
# received in its output folder and reports its outputs in the ExecutorOutput, like TFX's.
TASK = r'''
import json, os, sys, time
executor_input, role = json.loads(sys.argv[1]), sys.argv[2]
inputs, outputs = executor_input.get('inputs', {}), executor_input['outputs']

def report(key, **metadata):
  artifact = outputs['artifacts'][key]['artifacts'][0]
  os.makedirs(artifact['uri'], exist_ok=True)
  with open(os.path.join(artifact['uri'], 'received.json'), 'w') as f:
    json.dump({'executor_input': executor_input, 'python': sys.executable, 'argv': sys.argv},
              f)
  output = {'artifacts': {key: {'artifacts': [{'uri': artifact['uri'], 'metadata': metadata}]}},
            'parameterValues': {'span': 7} if role == 'driver' else {}}
  if 'with-unknown-field' in sys.argv:
    output['notAField'] = 1
  with open(outputs['outputFile'], 'w') as f:
    json.dump(output, f)

if role == 'driver':
  report('model', span=7)
elif role == 'train':
  if inputs['parameterValues']['mode'] == 'diverge':
    sys.exit('training diverged')
  values = inputs['parameterValues']
  report('model', greeting=values['greeting'], span=values['span'])
elif role == 'barrier':
  # Marks that it runs, then waits for its peer task to run too.
  mine, peer, wait_seconds = sys.argv[3], sys.argv[4], float(sys.argv[5])
  open(mine, 'w').close()
  deadline = time.monotonic() + wait_seconds
  while not os.path.exists(peer):
    if time.monotonic() > deadline:
      sys.exit('the peer task is not running alongside')
    time.sleep(0.02)
  report('model')
else:
  model = inputs['artifacts']['model']['artifacts'][0]
  report('blessing', blessed=1, current_model_id=model['name'])
'''
MODEL = {'instanceSchema': 'title: tfx.Model\ntype: object\n'}
BLESSING = {'instanceSchema': 'title: tfx.ModelBlessing\ntype: object\n'}


def container(role, pre_cache_check=False):
  container = {'image': 'ganpipe:test', 'command': ['python', '-c', TASK],
               'args': ['{{$}}', role]}
  if pre_cache_check:
    container['lifecycle'] = {'preCacheCheck': {'command': ['python', '-c', TASK],
                                                'args': ['{{$}}', 'driver']}}
  return {'container': container}


def write_job(path: str, job: dict) -> str:
  """Writes a PipelineJob (JSON) or a package's documents (a list: YAML) to `path`."""
  with open(path, 'w') as f:
    if isinstance(job, list):
      yaml.safe_dump_all(job, f)
    else:
      json.dump(job, f)
  return path


def received(result, task, key):
  """What a stand-in task recorded it received, read from its output folder."""
  with open(os.path.join(result.local_path(result.output(task, key)[0].uri),
                         'received.json')) as f:
    return json.load(f)

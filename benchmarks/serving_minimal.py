"""A reference for the serving benchmark: the least Python a batching Predict server can run.

It serves one SavedModel signature on the same grpc.aio stack as serving/server.py, batching
concurrent requests as the model server does with the benchmark's parameters, and nothing else:
no model manager, no input checks, no deadlines, metrics or error mapping. The requests of a batch
gather on the event loop under one `call_later` timer, the batch runs on an executor thread, every
request awaits the batch's one future and answers with its own row.

`benchmarks/serving_latency.py` measures it beside the model server and the no-op server, so the
report shows what share of the no-op's requests/s any batching server written in Python could
keep on the machine, next to the share ours keeps. It is a yardstick, not a server: a request it
cannot read (another input name, dtype or shape) fails the batch it joins.

  .venv/bin/python benchmarks/serving_minimal.py --model_dir DIR [--max_batch_size 32]
      [--batch_timeout_micros 1000] [--num_batch_threads 2]
"""

import argparse
import asyncio
import concurrent.futures
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from benchmarks import serving_load  # noqa: E402  pylint: disable=wrong-import-position

SIGNATURE = 'serving_default'


def serve(model_dir: str, max_batch_size: int, batch_timeout_micros: int,
          num_batch_threads: int) -> int:
  # pylint: disable=import-outside-toplevel
  import numpy as np
  from tensorflow.core.protobuf import config_pb2
  from tensorflow_serving.apis import predict_pb2
  from tensorflow_serving.apis import prediction_service_pb2_grpc
  from ganpipe.serving import servable
  # pylint: enable=import-outside-toplevel

  # The model server's Session: the signature's ops on the calling thread (config.session_config).
  loaded = servable.LoadedVersion('minimal', 1, model_dir,
                                  config_pb2.ConfigProto(inter_op_parallelism_threads=-1))
  signature = loaded.signature(SIGNATURE)
  (input_key,) = signature.inputs
  pool = concurrent.futures.ThreadPoolExecutor(num_batch_threads, thread_name_prefix='batch')
  timeout = batch_timeout_micros / 1e6

  class Batch:
    """The open batch: its rows, their count, the future its requests await, and its timer."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
      self.rows = []
      self.size = 0
      self.future = loop.create_future()
      self.timer = loop.call_later(timeout, self.close)

    def close(self) -> None:
      nonlocal current
      if current is self:
        current = None
      self.timer.cancel()
      asyncio.get_running_loop().run_in_executor(
          pool, signature, {input_key: np.concatenate(self.rows)}).add_done_callback(self._settle)

    def _settle(self, done) -> None:
      if done.exception() is not None:
        self.future.set_exception(done.exception())
      else:
        self.future.set_result(done.result())

  current = None

  class MinimalPredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):

    async def Predict(self, request, context):  # pylint: disable=invalid-name
      nonlocal current
      tensor = request.inputs[input_key]
      rows = np.array(list(tensor.string_val), dtype=object)
      if current is None:
        current = Batch(asyncio.get_running_loop())
      batch, start = current, current.size
      batch.rows.append(rows)
      batch.size += len(rows)
      if batch.size >= max_batch_size:
        batch.close()
      outputs = await asyncio.shield(batch.future)  # A cancelled caller leaves its batch be.
      response = predict_pb2.PredictResponse()
      response.model_spec.name = request.model_spec.name
      response.model_spec.version.value = loaded.version
      response.model_spec.signature_name = SIGNATURE
      for key, value in outputs.items():
        servable.fill_tensor_proto(response.outputs[key], value[start:start + len(rows)])
      return response

  return serving_load.serve_prediction_service(MinimalPredictionService())


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--model_dir', required=True, help='a SavedModel version folder')
  parser.add_argument('--max_batch_size', type=int, default=32)
  parser.add_argument('--batch_timeout_micros', type=int, default=1000)
  parser.add_argument('--num_batch_threads', type=int, default=2)
  args = parser.parse_args()
  return serve(args.model_dir, args.max_batch_size, args.batch_timeout_micros,
               args.num_batch_threads)


if __name__ == '__main__':
  sys.exit(main())

// A native gRPC client for benchmarks/serving_latency.py: Predict calls with no Python in the
// client, so the figures show what the server costs, without the Python client's share.
//
// Requests are serialized PredictRequests, each prefixed by its length (uint32, little endian),
// sent as raw bytes through a generic method: the client builds and parses no protobuf.
//
//   native_grpc_client TARGET REQUESTS latency CALLS WARMUP_CALLS
//       CALLS sequential calls on one channel; prints each call's milliseconds, one a line.
//   native_grpc_client TARGET REQUESTS load CLIENTS SECONDS WARMUP_SECONDS
//       CLIENTS threads, each with its own channel and connection, calling back to back; a call
//       counts when it ends inside the window. Prints one JSON object.
//
// Built by benchmarks/native_client.py with g++ and libgrpc++ (Debian: libgrpc++-dev).
#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/codegen/client_unary_call.h>
#include <grpcpp/impl/codegen/rpc_method.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
constexpr char kPredict[] = "/tensorflow.serving.PredictionService/Predict";

std::vector<std::string> ReadRequests(const char* path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<std::string> requests;
  uint32_t size;
  while (in.read(reinterpret_cast<char*>(&size), sizeof(size))) {
    std::string request(size, '\0');
    if (!in.read(&request[0], size)) break;
    requests.push_back(std::move(request));
  }
  return requests;
}

std::shared_ptr<grpc::Channel> Connect(const std::string& target) {
  grpc::ChannelArguments args;
  // A connection of its own, as each Python client has.
  args.SetInt("grpc.use_local_subchannel_pool", 1);
  args.SetMaxReceiveMessageSize(64 << 20);
  args.SetMaxSendMessageSize(64 << 20);
  auto channel = grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
  if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(60))) {
    fprintf(stderr, "native_grpc_client: cannot connect to %s\n", target.c_str());
    exit(1);
  }
  return channel;
}

bool Predict(grpc::Channel* channel, const grpc::internal::RpcMethod& method,
             const std::string& request) {
  grpc::Slice slice(request);
  grpc::ByteBuffer request_bytes(&slice, 1), response_bytes;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  return grpc::internal::BlockingUnaryCall<grpc::ByteBuffer, grpc::ByteBuffer>(
             channel, method, &context, request_bytes, &response_bytes)
      .ok();
}

double Milliseconds(Clock::duration duration) {
  return std::chrono::duration<double, std::milli>(duration).count();
}

Clock::duration Seconds(double seconds) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

int Latency(const std::string& target, const std::vector<std::string>& requests, int calls,
            int warmup_calls) {
  auto channel = Connect(target);
  grpc::internal::RpcMethod method(kPredict, grpc::internal::RpcMethod::NORMAL_RPC, channel);
  for (int i = 0; i < warmup_calls; ++i) {
    Predict(channel.get(), method, requests[i % requests.size()]);
  }
  int failed = 0;
  for (int i = 0; i < calls; ++i) {
    auto started = Clock::now();
    if (!Predict(channel.get(), method, requests[i % requests.size()])) ++failed;
    printf("%.6f\n", Milliseconds(Clock::now() - started));
  }
  if (failed) {
    fprintf(stderr, "native_grpc_client: %d of %d calls failed\n", failed, calls);
    return 1;
  }
  return 0;
}

int Load(const std::string& target, const std::vector<std::string>& requests, int clients,
         double seconds, double warmup_seconds) {
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < clients; ++i) channels.push_back(Connect(target));
  const auto begin = Clock::now() + Seconds(warmup_seconds);
  const auto end = begin + Seconds(seconds);
  std::atomic<long> failed{0};
  std::vector<std::vector<double>> latencies(clients);
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      grpc::internal::RpcMethod method(kPredict, grpc::internal::RpcMethod::NORMAL_RPC,
                                       channels[c]);
      for (size_t i = c;; ++i) {
        const auto sent = Clock::now();
        if (sent >= end) return;
        const bool ok = Predict(channels[c].get(), method, requests[i % requests.size()]);
        const auto done = Clock::now();
        if (!ok) {
          if (sent >= begin) ++failed;
        } else if (done >= begin && done <= end) {
          latencies[c].push_back(Milliseconds(done - sent));
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  std::vector<double> all;
  for (const auto& mine : latencies) all.insert(all.end(), mine.begin(), mine.end());
  std::sort(all.begin(), all.end());
  auto percentile = [&all](double q) {
    return all.empty() ? 0.0 : all[std::min(all.size() - 1, static_cast<size_t>(q * all.size()))];
  };
  printf("{\"requests\": %zu, \"requests_per_second\": %.1f, \"errors\": %ld, "
         "\"p50_ms\": %.3f, \"p99_ms\": %.3f}\n",
         all.size(), all.size() / seconds, failed.load(), percentile(0.5), percentile(0.99));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 7 && !(argc == 6 && std::string(argv[3]) == "latency")) {
    fprintf(stderr,
            "usage: %s TARGET REQUESTS latency CALLS WARMUP_CALLS\n"
            "       %s TARGET REQUESTS load CLIENTS SECONDS WARMUP_SECONDS\n",
            argv[0], argv[0]);
    return 2;
  }
  const std::string target = argv[1], mode = argv[3];
  const auto requests = ReadRequests(argv[2]);
  if (requests.empty()) {
    fprintf(stderr, "native_grpc_client: no requests in %s\n", argv[2]);
    return 2;
  }
  if (mode == "latency") return Latency(target, requests, atoi(argv[4]), atoi(argv[5]));
  if (mode == "load") return Load(target, requests, atoi(argv[4]), atof(argv[5]), atof(argv[6]));
  fprintf(stderr, "native_grpc_client: unknown mode %s\n", mode.c_str());
  return 2;
}

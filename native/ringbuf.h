// Streams a BPF ring buffer to JavaScript in batches.
//
// Why the epoll fd on the libuv loop rather than a polling thread and a ThreadSafeFunction:
// events are consumed on the JavaScript thread straight into the batch handed to the
// callback (one copy, no queue between threads, no thread to start and join), and
// back-pressure is the kernel's: while JavaScript is busy the ring fills and the BPF program
// counts what it could not reserve, which is the loss the probe reports. A thread would only
// move that loss into an unbounded userspace queue or a blocked producer.
#pragma once
#include <bpf/libbpf.h>
#include <napi.h>
#include <uv.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "object.h"
#include "registry.h"

namespace ebpfnet {

/**
 * new NativeRingReader(map, onBatch(data, ends), onError(err), onEnd(), { maxBatch?, maxBytes? })
 * starts polling at once. `data` holds the batch's events back to back; `ends[i]` is the
 * offset just past event i. stop() drains what is left and returns it as a last batch;
 * onEnd() tells when something else stopped it (closeAll(), its object closed).
 */
class RingReader : public Napi::ObjectWrap<RingReader>, public Handle {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit RingReader(const Napi::CallbackInfo& info);
  ~RingReader() override;
  bool Close() override;
  bool IsOpen() const override { return rb_ != nullptr; }

 private:
  Napi::Value Stop(const Napi::CallbackInfo& info);
  Napi::Value Pause(const Napi::CallbackInfo& info);
  Napi::Value Resume(const Napi::CallbackInfo& info);
  Napi::Value GetStats(const Napi::CallbackInfo& info);

  static void OnReadable(uv_poll_t* handle, int status, int events);
  static int OnSample(void* ctx, void* data, size_t size);
  /** Fills data_/ends_ with at most one batch; returns the events taken or a negative errno. */
  int Consume();
  void Report(const Napi::Error& error);
  void Call(Napi::FunctionReference& fn, const std::vector<napi_value>& args);
  bool Shutdown(bool unref);

  std::shared_ptr<ObjectState> state_;
  ring_buffer* rb_ = nullptr;
  uv_poll_t* poll_ = nullptr;
  bool polling_ = false;
  bool referenced_ = false;
  Napi::FunctionReference onBatch_, onError_, onEnd_;
  std::unique_ptr<Napi::AsyncContext> context_;
  std::vector<uint8_t> data_;
  std::vector<uint32_t> ends_;
  size_t maxBatch_ = 8192;
  size_t maxBytes_ = 4 << 20;
  uint64_t events_ = 0, batches_ = 0, bytes_ = 0;
};

}  // namespace ebpfnet

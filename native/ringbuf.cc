#include "ringbuf.h"

#include <errno.h>
#include <string.h>

#include "addon.h"
#include "errors.h"
#include "map.h"
#include "values.h"

namespace ebpfnet {

namespace {

// Returned by OnSample to end ring_buffer__consume() once a batch is full; libbpf has
// already counted that sample as consumed, and the rest stays in the ring for the next call.
constexpr int kBatchFull = -EFBIG;
constexpr int kBatchesPerWakeup = 16;

MapWrap* UnwrapMap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[0].IsObject() || !info[1].IsFunction() || !info[2].IsFunction() ||
      !info[3].IsFunction() || !info[0].As<Napi::Object>().InstanceOf(Constructors(env).map.Value()))
    throw Napi::TypeError::New(env, "NativeRingReader(map, onBatch, onError, onEnd, options?)");
  return MapWrap::Unwrap(info[0].As<Napi::Object>());
}

void FreePoll(uv_handle_t* handle) { delete reinterpret_cast<uv_poll_t*>(handle); }

}  // namespace

Napi::Function RingReader::Define(Napi::Env env) {
  return DefineClass(env, "NativeRingReader",
                     {
                         InstanceMethod<&RingReader::Stop>("stop"),
                         InstanceMethod<&RingReader::Pause>("pause"),
                         InstanceMethod<&RingReader::Resume>("resume"),
                         InstanceAccessor<&RingReader::GetStats>("stats"),
                     });
}

RingReader::RingReader(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<RingReader>(info), Handle(info.Env(), HandleKind::Reader, UnwrapMap(info)->state().get()) {
  Napi::Env env = info.Env();
  MapWrap* map = UnwrapMap(info);
  bpf_map* m = map->Live(env, "ring buffer");
  state_ = map->state();
  if (info.Length() > 4 && info[4].IsObject()) {
    Napi::Object o = info[4].As<Napi::Object>();
    maxBatch_ = static_cast<size_t>(std::max(1.0, OptionalNumber(o, "maxBatch", static_cast<double>(maxBatch_))));
    maxBytes_ = static_cast<size_t>(std::max(64.0, OptionalNumber(o, "maxBytes", static_cast<double>(maxBytes_))));
  }
  onBatch_ = Napi::Persistent(info[1].As<Napi::Function>());
  onError_ = Napi::Persistent(info[2].As<Napi::Function>());
  onEnd_ = Napi::Persistent(info[3].As<Napi::Function>());
  context_ = std::make_unique<Napi::AsyncContext>(env, "ebpfnet:ringbuf", info.This().As<Napi::Object>());

  rb_ = ring_buffer__new(bpf_map__fd(m), OnSample, this, nullptr);
  if (!rb_) throw ErrnoError(env, errno, std::string("ring buffer on ") + bpf_map__name(m));

  uv_loop_t* loop = nullptr;
  napi_get_uv_event_loop(env, &loop);
  poll_ = new uv_poll_t;
  int err = uv_poll_init(loop, poll_, ring_buffer__epoll_fd(rb_));
  if (err == 0) err = uv_poll_start(poll_, UV_READABLE, OnReadable);
  if (err) {
    std::string what = uv_strerror(err);
    delete poll_;  // never initialised as a handle, or failed before being started
    poll_ = nullptr;
    ring_buffer__free(rb_);
    rb_ = nullptr;
    throw CodeError(env, "EIO", "ring buffer poll: " + what);
  }
  poll_->data = this;
  polling_ = true;
  Ref();  // a running reader stays alive even when JavaScript drops it
  referenced_ = true;
}

RingReader::~RingReader() { Shutdown(false); }

// Closed by closeAll() or its object's close(), both called from JavaScript: tell the
// JavaScript side (synchronously; it only settles promises). Not while the environment shuts
// down, when JavaScript can no longer run.
bool RingReader::Close() {
  if (!Shutdown(true)) return false;
  if (!TearingDown(Env())) {
    try {
      onEnd_.Call({});
    } catch (const Napi::Error&) {
      // The JavaScript side's end handler does not throw; nothing to report to if it did.
    }
  }
  return true;
}

bool RingReader::Shutdown(bool unref) {
  if (!rb_) return false;
  if (poll_) {
    uv_poll_stop(poll_);
    poll_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(poll_), FreePoll);
    poll_ = nullptr;
  }
  polling_ = false;
  ring_buffer__free(rb_);
  rb_ = nullptr;
  if (unref && referenced_) Unref();
  referenced_ = false;
  return true;
}

int RingReader::OnSample(void* ctx, void* data, size_t size) {
  auto* self = static_cast<RingReader*>(ctx);
  const auto* bytes = static_cast<const uint8_t*>(data);
  self->data_.insert(self->data_.end(), bytes, bytes + size);
  self->ends_.push_back(static_cast<uint32_t>(self->data_.size()));
  if (self->ends_.size() >= self->maxBatch_ || self->data_.size() >= self->maxBytes_) return kBatchFull;
  return 0;
}

int RingReader::Consume() {
  data_.clear();
  ends_.clear();
  int n = ring_buffer__consume(rb_);
  if (n < 0 && n != kBatchFull) return n;
  events_ += ends_.size();
  bytes_ += data_.size();
  if (!ends_.empty()) batches_++;
  return static_cast<int>(ends_.size());
}

void RingReader::Call(Napi::FunctionReference& fn, const std::vector<napi_value>& args) {
  try {
    fn.MakeCallback(Value(), args, *context_);
  } catch (const Napi::Error& e) {
    // Nothing in JavaScript is below a libuv callback to catch it: make it uncaught.
    napi_fatal_exception(Env(), e.Value());
  }
}

void RingReader::Report(const Napi::Error& error) { Call(onError_, {error.Value()}); }

void RingReader::OnReadable(uv_poll_t* handle, int status, int /*events*/) {
  auto* self = static_cast<RingReader*>(handle->data);
  if (!self || !self->rb_) return;
  Napi::Env env = self->Env();
  Napi::HandleScope scope(env);
  if (status < 0) {
    self->Report(CodeError(env, "EIO", std::string("ring buffer poll: ") + uv_strerror(status)));
    return;
  }
  // Up to kBatchesPerWakeup full batches per wakeup, each its own callback: enough to keep up
  // with bursts, while the loop still gets to run other work in between wakeups.
  for (int i = 0; i < kBatchesPerWakeup; i++) {
    int n = self->Consume();
    if (n < 0) {
      self->Report(ErrnoError(env, n, "ring buffer consume"));
      return;
    }
    if (n == 0) return;
    bool full = static_cast<size_t>(n) >= self->maxBatch_ || self->data_.size() >= self->maxBytes_;
    Napi::HandleScope batchScope(env);
    auto data = Napi::Buffer<uint8_t>::Copy(env, self->data_.data(), self->data_.size());
    auto ends = Napi::Uint32Array::New(env, self->ends_.size());
    memcpy(ends.Data(), self->ends_.data(), self->ends_.size() * sizeof(uint32_t));
    self->Call(self->onBatch_, {data, ends});
    // The callback may have paused or stopped the reader; a short batch means the ring is empty.
    if (!full || !self->rb_ || !self->polling_) return;
  }
}

Napi::Value RingReader::Stop(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!rb_) return env.Null();
  if (poll_ && polling_) uv_poll_stop(poll_);
  polling_ = false;
  // Drain what is in the ring now into one last batch. Bounded: producers may still be
  // attached, so stop at the first pass that does not fill a whole batch.
  std::vector<uint8_t> all;
  std::vector<uint32_t> allEnds;
  int n;
  do {
    n = Consume();
    if (n < 0) break;
    uint32_t base = static_cast<uint32_t>(all.size());
    all.insert(all.end(), data_.begin(), data_.end());
    for (uint32_t end : ends_) allEnds.push_back(base + end);
  } while (static_cast<size_t>(n) >= maxBatch_);
  Shutdown(true);
  if (n < 0) throw ErrnoError(env, n, "ring buffer consume");
  if (allEnds.empty()) return env.Null();
  Napi::Object last = Napi::Object::New(env);
  last.Set("data", Napi::Buffer<uint8_t>::Copy(env, all.data(), all.size()));
  auto ends = Napi::Uint32Array::New(env, allEnds.size());
  memcpy(ends.Data(), allEnds.data(), allEnds.size() * sizeof(uint32_t));
  last.Set("ends", ends);
  return last;
}

Napi::Value RingReader::Pause(const Napi::CallbackInfo& info) {
  if (poll_ && polling_) uv_poll_stop(poll_);
  polling_ = false;
  return info.Env().Undefined();
}

Napi::Value RingReader::Resume(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!rb_ || !poll_) throw CodeError(env, "ECLOSED", "ring buffer reader is stopped");
  if (!polling_) {
    int err = uv_poll_start(poll_, UV_READABLE, OnReadable);
    if (err) throw CodeError(env, "EIO", std::string("ring buffer poll: ") + uv_strerror(err));
    polling_ = true;
  }
  return env.Undefined();
}

Napi::Value RingReader::GetStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("events", Napi::Number::New(env, static_cast<double>(events_)));
  o.Set("batches", Napi::Number::New(env, static_cast<double>(batches_)));
  o.Set("bytes", Napi::Number::New(env, static_cast<double>(bytes_)));
  o.Set("running", Napi::Boolean::New(env, rb_ != nullptr));
  o.Set("paused", Napi::Boolean::New(env, rb_ != nullptr && !polling_));
  return o;
}

}  // namespace ebpfnet

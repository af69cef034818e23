#include "log.h"

#include <bpf/libbpf.h>
#include <stdarg.h>
#include <stdio.h>

#include <atomic>
#include <mutex>

namespace ebpfnet {

namespace {

thread_local LogCapture* tl_capture = nullptr;

// The JavaScript logger. libbpf may print from any thread (and from finalizers, where
// JavaScript cannot run), so lines reach it through a thread-safe function: delivered in
// order on the loop, never re-entering JavaScript in the middle of a libbpf call.
std::mutex g_mu;
Napi::ThreadSafeFunction g_tsfn;
napi_env g_tsfn_env = nullptr;
std::atomic<int> g_max_level{-1};

struct Line {
  int level;
  std::string text;
};

void CallJs(Napi::Env env, Napi::Function fn, Line* line) {
  if (env != nullptr && fn != nullptr) {
    try {
      fn.Call({Napi::Number::New(env, line->level), Napi::String::New(env, line->text)});
    } catch (const Napi::Error& e) {
      e.ThrowAsJavaScriptException();  // surfaces as an uncaught exception of the logger
    }
  }
  delete line;
}

std::string Format(const char* fmt, va_list args) {
  char small[512];
  va_list copy;
  va_copy(copy, args);
  int n = vsnprintf(small, sizeof(small), fmt, copy);
  va_end(copy);
  if (n < 0) return std::string();
  if (static_cast<size_t>(n) < sizeof(small)) return std::string(small, n);
  std::string big(static_cast<size_t>(n) + 1, '\0');
  vsnprintf(&big[0], big.size(), fmt, args);
  big.resize(n);
  return big;
}

int Print(enum libbpf_print_level level, const char* fmt, va_list args) {
  int lvl = static_cast<int>(level);
  bool forward = lvl <= g_max_level.load(std::memory_order_relaxed);
  bool capture = tl_capture != nullptr;
  if (!forward && !capture) return 0;
  std::string text = Format(fmt, args);
  if (capture) tl_capture->Append(lvl, text);
  if (forward) {
    std::lock_guard<std::mutex> lock(g_mu);
    if (g_tsfn) {
      while (!text.empty() && text.back() == '\n') text.pop_back();
      auto* line = new Line{lvl, std::move(text)};
      if (g_tsfn.NonBlockingCall(line, CallJs) != napi_ok) delete line;
    }
  }
  return 0;
}

void ClearLocked() {
  if (g_tsfn) g_tsfn.Release();
  g_tsfn = Napi::ThreadSafeFunction();
  g_tsfn_env = nullptr;
  g_max_level.store(-1);
}

}  // namespace

LogCapture::LogCapture(int maxLevel) : outer_(tl_capture), maxLevel_(maxLevel) { tl_capture = this; }

LogCapture::~LogCapture() { tl_capture = outer_; }

void LogCapture::Append(int level, const std::string& line) {
  if (level <= maxLevel_) text_ += line;
  if (outer_) outer_->Append(level, line);
}

void InstallLibbpfPrint() {
  static std::once_flag once;
  std::call_once(once, [] { libbpf_set_print(Print); });
}

Napi::Value SetLogCallback(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::lock_guard<std::mutex> lock(g_mu);
  ClearLocked();
  if (info.Length() < 1 || info[0].IsNull() || info[0].IsUndefined()) return env.Undefined();
  if (!info[0].IsFunction()) throw Napi::TypeError::New(env, "setLogCallback: expected a function or null");
  int level = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().Int32Value() : 1;
  g_tsfn = Napi::ThreadSafeFunction::New(env, info[0].As<Napi::Function>(), "ebpfnet:libbpf-log", 0, 1);
  g_tsfn.Unref(env);  // a logger alone must not keep the process alive
  g_tsfn_env = env;
  g_max_level.store(level < 0 ? 0 : level > 2 ? 2 : level);
  return env.Undefined();
}

void ReleaseLogCallback(napi_env env) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_tsfn_env == env) ClearLocked();
}

}  // namespace ebpfnet

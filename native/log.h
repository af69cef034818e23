// libbpf's print callback: every line goes to the JavaScript logger (when one is set) and to
// the LogCapture open on the calling thread, so a failed call can return what libbpf said.
#pragma once
#include <napi.h>
#include <string>

namespace ebpfnet {

/** Installs the print callback (once per process). */
void InstallLibbpfPrint();

/** setLogCallback(fn | null, maxLevel): fn(level, text) with 0 = warn, 1 = info, 2 = debug. */
Napi::Value SetLogCallback(const Napi::CallbackInfo& info);

/** Drops the JavaScript logger of this environment (called when it shuts down). */
void ReleaseLogCallback(napi_env env);

/** Collects libbpf output printed on this thread while it lives (scopes nest). */
class LogCapture {
 public:
  /** Keeps lines of level <= maxLevel (0 warn, 1 info, 2 debug). */
  explicit LogCapture(int maxLevel = 1);
  ~LogCapture();
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;

  const std::string& Text() const { return text_; }
  void Append(int level, const std::string& line);

 private:
  LogCapture* outer_;
  int maxLevel_;
  std::string text_;
};

}  // namespace ebpfnet

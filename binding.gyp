{
  "targets": [
    {
      "target_name": "ebpfnet",
      "sources": [
        "native/addon.cc",
        "native/btf-layout.cc",
        "native/datasec.cc",
        "native/errors.cc",
        "native/features.cc",
        "native/link.cc",
        "native/log.cc",
        "native/map.cc",
        "native/object.cc",
        "native/registry.cc",
        "native/stats.cc",
        "native/ringbuf.cc",
        "native/values.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Wno-missing-field-initializers"],
      "libraries": ["<!@(node native/libbpf-libs.mjs)"]
    }
  ]
}

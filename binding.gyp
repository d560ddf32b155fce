{
  "targets": [
    {
      "target_name": "simdjson",
      "type": "static_library",
      "sources": ["<!(node -p \"require('node:path').relative(process.cwd(), require.resolve('@nozbe/simdjson/src/simdjson.cpp'))\")"],
      "include_dirs": ["<!(node -p \"require('node:path').dirname(require.resolve('@nozbe/simdjson/src/simdjson.h'))\")"],
      "defines": ["SIMDJSON_EXCEPTIONS=0"],
      "cflags_cc!": ["-fno-rtti", "-std=gnu++17"],
      "cflags_cc": ["-std=c++20", "-O3"],
      "xcode_settings": {"CLANG_CXX_LANGUAGE_STANDARD": "c++20", "GCC_OPTIMIZATION_LEVEL": "3"}
    },
    {
      "target_name": "sse_fanout",
      "dependencies": ["simdjson"],
      "sources": ["<!@(node scripts/sources.js core http compress pocketbase history mercure auth io listener addon)"],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "<!(node -p \"require('node:path').dirname(require.resolve('@nozbe/simdjson/src/simdjson.h'))\")",
        "src/core",
        "src/http",
        "src/compress",
        "src/pocketbase",
        "src/history",
        "src/mercure",
        "src/auth",
        "src/io",
        "src/listener",
        "src/addon"
      ],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED", "SIMDJSON_EXCEPTIONS=0"],
      "cflags_cc!": ["-std=gnu++17"],
      "cflags_cc": ["-std=c++20", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"],
      "xcode_settings": {"CLANG_CXX_LANGUAGE_STANDARD": "c++20", "MACOSX_DEPLOYMENT_TARGET": "11.0"}
    }
  ]
}

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
      "sources": [
        "src/core/frame.cpp",
        "src/core/outbox.cpp",
        "src/pocketbase/pb_field_picker.cpp",
        "src/pocketbase/pb_filter.cpp",
        "src/pocketbase/pb_index.cpp",
        "src/pocketbase/pb_json.cpp",
        "src/pocketbase/pb_like.cpp",
        "src/pocketbase/pb_subscription.cpp",
        "src/core/registry.cpp",
        "src/core/sse_encoder.cpp",
        "src/core/topic_index.cpp",
        "src/core/user_table.cpp",
        "src/io/dispatcher.cpp",
        "src/io/shard.cpp",
        "src/addon/addon.cpp",
        "src/addon/args.cpp",
        "src/addon/filter_wrap.cpp",
        "src/addon/hub_wrap.cpp",
        "src/addon/realtime_wrap.cpp",
        "src/addon/report_channel.cpp"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "<!(node -p \"require('node:path').dirname(require.resolve('@nozbe/simdjson/src/simdjson.h'))\")",
        "src/core",
        "src/pocketbase",
        "src/io",
        "src/addon"
      ],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED", "SIMDJSON_EXCEPTIONS=0"],
      "cflags_cc!": ["-std=gnu++17"],
      "cflags_cc": ["-std=c++20", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"],
      "xcode_settings": {"CLANG_CXX_LANGUAGE_STANDARD": "c++20", "MACOSX_DEPLOYMENT_TARGET": "11.0"}
    }
  ]
}

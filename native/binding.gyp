{
  "targets": [
    {
      "target_name": "meshnative",
      "sources": ["src/meshnative.c"],
      "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}

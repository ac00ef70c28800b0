/* Test-only helpers in C (fast even in debug builds): bdrand weights, safetensors writing. */

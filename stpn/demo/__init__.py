"""`stpn demo`: per-frame baseline vs STPN on the built-in degraded-video benchmark."""

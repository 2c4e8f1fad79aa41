"""Limits of decoding that the app and the tools read without loading torch."""

MAX_ROWS = 8  # rows one batched decode holds: compare columns, the server's --max-rows

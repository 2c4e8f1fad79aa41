"""Limits of decoding that the app and the tools read without loading torch."""

MAX_ROWS = 8  # rows one batched decode holds for the app and the tools: compare columns, bench --batch
# Rows `tfchat serve` decodes together (--max-rows): with 32 streams at the 140M shape, 8 rows served
# 135 tok/s and 32 rows 256 (vLLM 325), the weights read once a step for every row.
MAX_SERVE_ROWS = 32

"""Parameter values in the words the README uses, for people: `off`, `fresh each time`, stop
strings quoted with their escapes (as `/set stop "\\n\\n" "###"` takes them)."""
from __future__ import annotations

import json


def shown_value(key: str, value) -> str:
    if key == "seed" and value is None:
        return "fresh each time"
    if key == "top_k" and not value:
        return "off"
    if key == "max_new_tokens" and value == 0:
        return "until stopped"
    if key == "stop":
        return " ".join(json.dumps(s, ensure_ascii=False) for s in value) if value else "none"
    if value is None:
        return "off"
    return str(value)

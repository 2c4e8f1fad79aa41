"""A request's body, read within its bounds: its size, the time it may take to arrive, and JSON's depth."""
from __future__ import annotations

import asyncio
import json

from tfchat.core.serve.openai_api import ApiError

MAX_BODY_BYTES = 4 * 1024 * 1024  # a body beyond this is refused with 413 before it is parsed
# A body over the limit is still read, and dropped, up to this: a server that answered with the body unread
# would close on it, the client's kernel would see a reset, and the client would never read the 413.
MAX_DRAINED_BYTES = 1024 * 1024 * 1024
BODY_READ_SECONDS = 60.0  # a body still arriving after this is refused with 408 (4 MB at ~0.5 Mbit/s)


async def read_json_body(request, body_read_seconds: float) -> object:
    """The request's JSON, or the ApiError that answers it: 413 over MAX_BODY_BYTES, 408 too slow, 400 not JSON."""
    declared = request.headers.get("content-length")
    too_large = ApiError(413, f"the request body is over {MAX_BODY_BYTES} bytes", code="body_too_large")
    if declared is not None and declared.isdigit() and int(declared) > MAX_DRAINED_BYTES:
        raise too_large  # not worth reading to the end: its client may see the connection closed instead
    try:
        body = await asyncio.wait_for(_read_body(request), body_read_seconds)
    except asyncio.TimeoutError:  # a client trickling its body would hold the connection for good
        if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            raise too_large from None
        raise ApiError(408, f"the request body took over {body_read_seconds:g} s to arrive",
                       code="body_too_slow") from None
    if body is None:
        raise too_large
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "the request body is not JSON") from None
    except RecursionError:  # "[" * 100000: deeper than Python's parser goes
        raise ApiError(400, "the request body nests deeper than any request needs") from None


async def _read_body(request) -> bytes | None:
    """The body, or None when it is over MAX_BODY_BYTES: then the rest is read and dropped (up to
    MAX_DRAINED_BYTES, in bounded memory) so the client reads the answer."""
    body, size = bytearray(), 0
    async for chunk in request.stream():
        size += len(chunk)
        if size <= MAX_BODY_BYTES:
            body += chunk
        elif size > MAX_DRAINED_BYTES:
            break
    return bytes(body) if size <= MAX_BODY_BYTES else None

"""Server-sent events framing: one ``data: <json>`` line and a blank line per event; ``data: [DONE]`` ends."""

from __future__ import annotations

import json


def sse_event(payload: dict) -> str:
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"


def sse_done() -> str:
    return "data: [DONE]\n\n"

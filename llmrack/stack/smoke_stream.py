"""Whether a streamed completion reaches the client as it is generated, or buffered on the way.

``timed_stream`` times the events of one generation of a fixed length; ``StreamTiming.verdict`` tells a streamed
answer from a buffered one; ``streamed_verdict`` retries a few times, so a host stalled for one generation passes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from llmrack.httpclient import CaFile
from llmrack.stack.smoke_http import stream_events

STREAM_MAX_TOKENS = 256  # long enough that the first token and the end of the generation are far apart
ARRIVAL_GAP_S = 0.001  # events read less than 1 ms apart came in one piece from the gateway


@dataclass(frozen=True)
class StreamTiming:
    """When a streamed generation's events reached the client (monotonic seconds).

    ``arrivals``: groups of events read less than ``ARRIVAL_GAP_S`` apart (on a busy machine several events of an
    unbuffered stream can come in one read). A gateway that buffers the answer hands it on at the end, in one or a
    few pieces: its first chunk comes as late as the last.
    """

    start: float
    first: float
    end: float
    events: int
    arrivals: int

    def verdict(self) -> tuple[bool, str]:
        """(streamed?, what was seen). Streamed: the first chunk arrived in the first half of the stream (from the
        request to the end marker), and the events did not all come in one piece."""
        total, first = self.end - self.start, self.first - self.start
        seen = (f"{self.events} chunks in {self.arrivals} arrival(s); first after {first * 1000:.0f} ms, "
                f"end after {total * 1000:.0f} ms")
        if self.events < 16:
            return False, f"{seen}: too short a generation to tell the first chunk from the end"
        problems = []
        if first > total / 2:
            problems.append("the first chunk came in the second half of the stream")
        if self.arrivals < 2:
            problems.append(f"all {self.events} chunks came in one piece")
        if problems:
            return False, f"{seen}: buffered on the way ({'; '.join(problems)})"
        return True, seen


def stream_timing(start: float, times: list[float], end: float) -> StreamTiming:
    """A :class:`StreamTiming` from the request's start, each content event's arrival and the end marker's."""
    if not times:
        return StreamTiming(start, end, end, 0, 0)
    arrivals = 1 + sum(1 for a, b in zip(times, times[1:], strict=False) if b - a > ARRIVAL_GAP_S)
    return StreamTiming(start, times[0], end, len(times), arrivals)


def timed_stream(url: str, model: str, *, api_key: str | None, ca: CaFile = None, timeout: float = 300,
                 max_tokens: int = STREAM_MAX_TOKENS) -> StreamTiming:
    """Stream a completion of exactly ``max_tokens`` tokens (``ignore_eos``) and time its events."""
    t0 = time.monotonic()
    times: list[float] = []
    done = None
    for t, event in stream_events(url, {"model": model, "prompt": "def main():", "max_tokens": max_tokens,
                                        "temperature": 0, "ignore_eos": True},
                                  api_key=api_key, ca=ca, timeout=timeout):
        if event is None:
            done = t
        elif event.get("choices"):
            times.append(t)
    if done is None:
        raise AssertionError(f"{len(times)} chunks and no end marker ([DONE])")
    return stream_timing(t0, times, done)


STREAM_TRIES = 3  # a buffering gateway fails every try; a host stalled for one generation passes the next


def streamed_verdict(url: str, model: str, *, api_key: str | None, ca: CaFile = None, timeout: float = 300,
                     tries: int = STREAM_TRIES) -> tuple[bool, str, StreamTiming]:
    """Stream up to ``tries`` completions until one arrives as it is generated: (streamed?, what was seen,
    the last timing). A verdict reached on a later try says what the earlier ones saw."""
    earlier: list[str] = []
    for n in range(1, tries + 1):
        timing = timed_stream(url, model, api_key=api_key, ca=ca, timeout=timeout)
        passed, seen = timing.verdict()
        if passed or n == tries:
            break
        earlier.append(seen)
    if earlier:
        seen = f"{seen} (try {n} of {tries}; before: {' | '.join(earlier)})"
    return passed, seen, timing

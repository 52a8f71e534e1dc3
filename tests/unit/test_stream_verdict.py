"""The streaming verdict: what counts as buffered, and the retries that keep one stalled generation from failing
a host whose gateway streams (a buffering gateway fails every try)."""

import pytest

from llmrack.stack import smoke_stream
from llmrack.stack.smoke_stream import STREAM_TRIES, StreamTiming, stream_timing, streamed_verdict

STREAMED = stream_timing(0.0, [0.01 + i * 0.002 for i in range(256)], 0.6)
BUFFERED = stream_timing(0.0, [0.8 + i * 0.00001 for i in range(256)], 0.81)


def test_a_stream_that_arrives_as_generated_passes() -> None:
    passed, seen = STREAMED.verdict()
    assert passed and "256 chunks in 256 arrival(s)" in seen


def test_a_stream_that_arrives_in_one_piece_at_the_end_is_buffered() -> None:
    passed, seen = BUFFERED.verdict()
    assert not passed
    assert "first chunk came in the second half" in seen and "all 256 chunks came in one piece" in seen


def test_too_short_a_generation_is_no_proof() -> None:
    assert not StreamTiming(0.0, 0.01, 0.02, 8, 8).verdict()[0]


@pytest.mark.parametrize("seq,passes,calls", [
    ([STREAMED], True, 1),
    ([BUFFERED, STREAMED], True, 2),
    ([BUFFERED] * STREAM_TRIES, False, STREAM_TRIES),
])
def test_streamed_verdict_retries_only_a_buffered_answer(monkeypatch, seq, passes, calls) -> None:
    made = []

    def fake(url, model, **kw):
        made.append(url)
        return seq[len(made) - 1]

    monkeypatch.setattr(smoke_stream, "timed_stream", fake)
    passed, seen, _ = streamed_verdict("https://gw/v1/completions", "m", api_key="k")
    assert passed is passes and len(made) == calls
    if calls > 1:
        assert f"try {calls} of {STREAM_TRIES}" in seen and "buffered on the way" in seen

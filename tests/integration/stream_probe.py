"""Feed STREAM_SRC to STREAM_CMD on each host with llmrack.ssh_stream (STREAM_SHA: the sha256 it must have)."""

import os

from llmrack.ssh_stream import stream_file

stream_file(name="Stream the probe file", src=os.environ["STREAM_SRC"], command=os.environ["STREAM_CMD"],
            sha256=os.environ["STREAM_SHA"])

"""The WeCom/DingTalk relay: message formats, DingTalk signing, and a delivery to a local robot."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from llmrack.monitoring import relay

PAYLOAD = {
    "status": "firing", "commonLabels": {"alertname": "LlmrackTargetDown"},
    "alerts": [{"status": "firing", "labels": {"alertname": "LlmrackTargetDown", "severity": "critical",
                                               "host": "node1", "instance": "vllm-a:8000"},
                "annotations": {"summary": "Scrape target vllm on node1 is down"},
                "startsAt": "2025-01-01T00:00:00Z"}],
}


def test_messages():
    wecom = relay.wecom_message(PAYLOAD)
    assert wecom["msgtype"] == "markdown" and "[FIRING:1] LlmrackTargetDown" in wecom["markdown"]["content"]
    assert "host=node1, instance=vllm-a:8000" in wecom["markdown"]["content"]
    ding = relay.dingtalk_message(PAYLOAD)
    assert ding["markdown"]["title"] == "[FIRING:1] LlmrackTargetDown"
    big = dict(PAYLOAD, alerts=PAYLOAD["alerts"] * 200)
    assert len(relay.wecom_message(big)["markdown"]["content"].encode()) <= 4096


def test_dingtalk_signature():
    url = relay.dingtalk_signed_url("https://oapi.dingtalk.com/robot/send?access_token=t", "SECabc",
                                    now_ms=1700000000000)
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    expected = base64.b64encode(hmac.new(b"SECabc", b"1700000000000\nSECabc", hashlib.sha256).digest()).decode()
    assert q["timestamp"] == ["1700000000000"] and q["sign"] == [expected] and q["access_token"] == ["t"]


def _serve(handler) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_relay_delivers_to_a_robot_and_reports_failures():
    received: list[dict] = []

    class Robot(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            body = b'{"errcode": 0}' if "key=good" in self.path else b'{"errcode": 93000, "errmsg": "bad key"}'
            self.send_response(200)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    robot = _serve(Robot)
    base = f"http://127.0.0.1:{robot.server_port}/send"
    config = {"wecom": {"ops": f"{base}?key=good", "bad": f"{base}?key=bad"}}
    server = _serve(relay.make_handler(config))
    url = f"http://127.0.0.1:{server.server_port}"
    try:
        req = urllib.request.Request(f"{url}/wecom/ops", data=json.dumps(PAYLOAD).encode(), method="POST")
        assert urllib.request.urlopen(req, timeout=5).status == 200
        assert received[0]["msgtype"] == "markdown"
        for path, code in (("/wecom/bad", 502), ("/wecom/nobody", 404)):
            req = urllib.request.Request(url + path, data=json.dumps(PAYLOAD).encode(), method="POST")
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(req, timeout=5)
            assert err.value.code == code
    finally:
        server.shutdown()
        robot.shutdown()

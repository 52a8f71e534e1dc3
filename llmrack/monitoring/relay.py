"""Relay from Alertmanager's webhook to WeCom (企业微信) and DingTalk (钉钉) group robots.

Alertmanager 0.25 speaks to WeCom *applications* (``wechat_configs``, corp id + agent secret) but not to the
group robots most offices use, and not to DingTalk at all: robots take their own JSON. Alertmanager posts to
``http://alert-relay:9095/wecom/<name>`` or ``/dingtalk/<name>``; this relay turns the alert group into the
robot's markdown message and posts it. A failed delivery answers 502 so Alertmanager retries.

Standard library only: it runs as ``python3 relay.py --config /run/secrets/relay.json`` in a small image.
The config (a secrets file, never in the repository) maps robot names to their webhook URLs::

    {"wecom": {"ops": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=..."},
     "dingtalk": {"ops": {"url": "https://oapi.dingtalk.com/robot/send?access_token=...", "secret": "SEC..."}}}
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import sys
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_BYTES = 4000  # WeCom markdown content is limited to 4096 bytes


def markdown(payload: dict[str, Any]) -> tuple[str, str]:
    """(title, markdown text) of an Alertmanager webhook payload."""
    status = payload.get("status", "firing").upper()
    alerts = payload.get("alerts", [])
    common = payload.get("commonLabels", {})
    name = common.get("alertname", "alerts")
    title = f"[{status}:{len(alerts)}] {name}"
    lines = [f"### {title}"]
    for alert in alerts:
        labels, notes = alert.get("labels", {}), alert.get("annotations", {})
        head = f"**{labels.get('alertname', name)}** ({labels.get('severity', 'none')}, {alert.get('status', '')})"
        lines.append(f"- {head}")
        if notes.get("summary"):
            lines.append(f"  {notes['summary']}")
        where = ", ".join(f"{k}={labels[k]}" for k in ("host", "instance", "model_name", "gpu") if k in labels)
        if where:
            lines.append(f"  > {where}")
        if alert.get("startsAt"):
            lines.append(f"  > since {alert['startsAt']}")
    text = "\n".join(lines)
    encoded = text.encode()
    if len(encoded) > MAX_BYTES:
        text = encoded[: MAX_BYTES - 20].decode(errors="ignore") + "\n…(truncated)"
    return title, text


def wecom_message(payload: dict[str, Any]) -> dict[str, Any]:
    _title, text = markdown(payload)
    return {"msgtype": "markdown", "markdown": {"content": text}}


def dingtalk_message(payload: dict[str, Any]) -> dict[str, Any]:
    title, text = markdown(payload)
    return {"msgtype": "markdown", "markdown": {"title": title, "text": text}}


def dingtalk_signed_url(url: str, secret: str, now_ms: int | None = None) -> str:
    """DingTalk's "加签" security setting: timestamp + HMAC-SHA256 signature in the query string."""
    if not secret:
        return url
    timestamp = str(now_ms if now_ms is not None else int(time.time() * 1000))
    digest = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    sign = urllib.parse.quote_plus(base64.b64encode(digest).decode())
    return f"{url}{'&' if '?' in url else '?'}timestamp={timestamp}&sign={sign}"


def post_json(url: str, body: dict[str, Any], timeout: float = 10) -> None:
    data = json.dumps(body, ensure_ascii=False).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (URLs come from the secrets file)
        answer = json.loads(resp.read() or b"{}")
    if answer.get("errcode", 0) != 0:  # both robots answer 200 with an error code
        raise RuntimeError(f"robot refused the message: {answer}")


def deliver(config: dict[str, Any], kind: str, name: str, payload: dict[str, Any]) -> None:
    robots = config.get(kind, {})
    if name not in robots:
        raise KeyError(f"no {kind} robot named {name!r}")
    if kind == "wecom":
        post_json(str(robots[name]), wecom_message(payload))
    elif kind == "dingtalk":
        robot = robots[name]
        url = dingtalk_signed_url(robot["url"], robot.get("secret", ""))
        post_json(url, dingtalk_message(payload))
    else:
        raise KeyError(f"unknown robot kind {kind!r}")


def make_handler(config: dict[str, Any]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self, code: int, text: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.end_headers()
            self.wfile.write(text.encode())

        def do_GET(self) -> None:  # noqa: N802
            self._answer(200 if self.path == "/-/healthy" else 404, "ok\n" if self.path == "/-/healthy" else "")

        def do_POST(self) -> None:  # noqa: N802
            parts = [p for p in self.path.split("/") if p]
            if len(parts) != 2:
                self._answer(404, "use /wecom/<name> or /dingtalk/<name>\n")
                return
            try:
                payload = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            except ValueError:
                self._answer(400, "body is not JSON\n")
                return
            try:
                deliver(config, parts[0], parts[1], payload)
            except KeyError as exc:
                self._answer(404, f"{exc}\n")
            except Exception as exc:  # delivery failed: make Alertmanager retry
                self.log_error("delivery to %s/%s failed: %s", parts[0], parts[1], exc)
                self._answer(502, f"delivery failed: {exc}\n")
            else:
                self._answer(200, "sent\n")

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="JSON file of robot names and URLs (secrets).")
    parser.add_argument("--listen", default="0.0.0.0:9095", help="address:port (inside the monitoring network).")
    args = parser.parse_args(argv)
    with open(args.config, encoding="utf-8") as fh:
        config = json.load(fh)
    host, _, port = args.listen.rpartition(":")
    server = ThreadingHTTPServer((host, int(port)), make_handler(config))
    print(f"alert relay listening on {args.listen}", file=sys.stderr, flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

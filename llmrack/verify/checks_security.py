"""Security lines: SSH password logins, the API key on the gateway (ports: ``llmrack.verify.exposure``)."""

from __future__ import annotations

import socket

from llmrack.verify.context import (
    CheckContext,
    has_role,
    stack_absent,
)
from llmrack.verify.result import (
    Outcome,
    bad,
    check,
    judge,
    not_applicable,
)


@check("sec.ssh_password", "SSH password logins off", "security",
       "SSH 仅允许密钥登录", "SSH allows key logins only", "llmrack")
def sec_ssh_password(ctx: CheckContext) -> Outcome:
    if not ctx.has("sshd") and ctx.run("test -x /usr/sbin/sshd")[0] != 0:
        return not_applicable("no SSH server installed", "no")
    rc, out, _ = ctx.run("sshd -T 2>/dev/null || /usr/sbin/sshd -T 2>/dev/null")
    if rc != 0 or not out.strip():
        return Outcome("error", "`sshd -T` failed (needs root and sshd)", None, "no")
    conf = dict((line.split(" ", 1) + [""])[:2] for line in out.lower().splitlines() if line)
    pw = conf.get("passwordauthentication", "?")
    kbd = conf.get("kbdinteractiveauthentication", conf.get("challengeresponseauthentication", "no"))
    problems = [f"{k} {v}" for k, v in (("PasswordAuthentication", pw), ("KbdInteractiveAuthentication", kbd))
                if v != "no"]
    return judge(not problems, "; ".join(problems) + " in the effective sshd configuration" if problems
                 else "passwords off (PasswordAuthentication no, KbdInteractiveAuthentication no)",
                 {"passwordauthentication": pw, "kbdinteractiveauthentication": kbd}, "no")


def tcp_open(address: str, port: int, timeout: float = 1.5) -> bool:
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


def _is_loopback(address: str) -> bool:
    import ipaddress

    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return address == "localhost"


@check("sec.gateway_auth", "The API refuses requests without a key", "security",
       "API 需要密钥访问", "The API requires a key", "llmrack")
def sec_gateway_auth(ctx: CheckContext) -> Outcome:
    if not has_role(ctx, "gateway"):
        return not_applicable("the host has no gateway role", "401/403")
    if (out := stack_absent(ctx, 'stack', "401/403")) is not None:
        return out
    try:
        resp = ctx.gateway_get("/v1/models", key=False)
    except Exception as exc:
        return bad(f"the gateway does not answer: {type(exc).__name__}: {exc}", None, "401/403")
    code = resp.status_code
    return judge(code in (401, 403), f"GET /v1/models without a key: HTTP {code}", code, "401/403")



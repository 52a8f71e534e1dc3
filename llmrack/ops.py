"""The one way roles write files on a host: render, stage, check with the tool's own checker, make live.

* :func:`render` / :func:`render_template`: one Jinja environment over ``templates/`` (line formats only:
  loops and simple ifs, strict about undefined names).
* :func:`put_text`: write bytes to a path (a no-op when the host's file already has them).
* :func:`install_checked`: when the host's file differs, stage the text as ``<dest>.new``, run the tool's own
  checker on it (``sshd -t -f``, ``nft -c -f``, ``nginx -t``, ``dockerd --validate``), and only when it passes
  move it over the live file. It returns the operation that made it live, or None when nothing differed, so
  restarts follow from changes.
* :func:`stop_host`: fail one host on purpose with a message (no traceback), the others go on.
"""

from __future__ import annotations

import hashlib
import shlex
from functools import lru_cache
from io import StringIO
from pathlib import Path
from typing import Any

import jinja2
from pyinfra import host, logger
from pyinfra.facts.files import Sha256File
from pyinfra.operations import files, python, server

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
APT_CACHE_MAX_AGE_S = 24 * 3600
APT_RETRIES = {"_retries": 3, "_retry_delay": 10}  # unattended-upgrades may hold the apt lock


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The project's Jinja environment (one for every template)."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)), undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, autoescape=False,
    )


def render(template: str, **context: Any) -> str:
    """Render ``templates/<template>``."""
    return environment().get_template(template).render(**context)


def render_template(role: str, dest: str, **data: Any) -> str:
    """Render ``templates/<role>/<dest>.j2`` (the template tree mirrors the destination paths)."""
    return render(f"{role}/{dest.lstrip('/')}.j2", **data)


def template_path(role: str, dest: str) -> str:
    """The file of ``templates/<role>/<dest>.j2`` (for operations that render on their own)."""
    return str(TEMPLATES / role / dest.lstrip("/")) + ".j2"


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def put_text(name: str, text: str, dest: str, mode: str = "644", **kwargs: Any):
    """Write ``text`` to ``dest`` (a no-op when the host's file already has these bytes)."""
    return files.put(name=name, src=StringIO(text), dest=dest, mode=mode, **kwargs)


def install_checked(name: str, text: str, dest: str, check: str, *, after: str = "", mode: str = "644") -> Any:
    """Write ``dest`` only when it differs: upload ``dest.new``, run ``check`` on it (a shell command; ``{}`` is
    the quoted staged file), move it into place, then run ``after`` (a check of the whole configuration);
    when ``after`` fails the previous file is put back. Returns the move operation (restarts follow from its
    ``did_change``), or None when the host's file already matches."""
    if host.get_fact(Sha256File, path=dest) == sha256_text(text):
        return None
    put_text(f"Upload {dest}.new (candidate of {dest})", text, f"{dest}.new", mode=mode)
    return server.shell(name=name, commands=[checked_install_script(dest, check, after=after)])


def checked_install_script(dest: str, check: str, *, after: str = "") -> str:
    """The shell script that checks ``dest.new``, moves it over ``dest`` and, when ``after`` fails, puts the
    previous file back (exit 1 and a message on stderr on any refusal)."""
    candidate, previous = f"{dest}.new", f"{dest}.llmrack-prev"
    q_new, q_dest, q_prev = shlex.quote(candidate), shlex.quote(dest), shlex.quote(previous)
    script = [
        f"if ! ( {check.format(q_new)} ); then rm -f {q_new}; echo 'rejected: {dest} left unchanged' >&2; exit 1; fi",
        f"if [ -e {q_dest} ]; then cp -p {q_dest} {q_prev}; else rm -f {q_prev}; fi",
        f"mv -f {q_new} {q_dest}",
    ]
    if after:
        script.append(
            f"if ! ( {after} ); then if [ -e {q_prev} ]; then mv -f {q_prev} {q_dest}; else rm -f {q_dest}; fi; "
            f"echo 'rejected by {after}: {dest} restored' >&2; exit 1; fi"
        )
    script.append(f"rm -f {q_prev}")
    return "\n".join(script)


def stop_host(message: str, *, name: str, **op_kwargs: Any) -> None:
    """Add an operation that fails this host with ``message`` (printed once, in red, at execution).

    pyinfra marks an operation failed when a Python callback taking ``state`` and ``host`` returns False; the
    host then gets no further operations and the run ends with "Error: executed 0 commands" for it. Raising an
    exception in the callback would do the same but prints a Python traceback for what is an expected stop.
    ``op_kwargs`` are pyinfra's global operation arguments, e.g. ``_if`` to stop only after a change.
    """

    def _fail(state, host) -> bool:  # noqa: ANN001 - pyinfra passes its State and Host
        host.log_styled(f"stopped: {message}", fg="red", log_func=logger.error)
        return False

    python.call(name=name, function=_fail, **op_kwargs)

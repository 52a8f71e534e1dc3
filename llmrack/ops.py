"""The one way roles write files on a host: render, stage, check with the tool's own checker, make live.

* :func:`render` / :func:`render_template`: one Jinja environment over ``templates/`` (line formats only:
  loops and simple ifs, strict about undefined names).
* :func:`put_text`: write bytes to a path (a no-op when the host's file already has them).
* :func:`install_checked`: when the host's file differs, stage the text as ``<dest>.new``, run the tool's own
  checker on it (``sshd -t -f``, ``nft -c -f``, ``nginx -t``, ``dockerd --validate``), and only when it passes
  move it over the live file. It returns the operation that made it live, or None when nothing differed, so
  restarts follow from changes.
* :func:`install_set`: the same for a directory of files checked together (``nginx -t``, ``promtool``): staged
  in a staging directory, checked there, the files that differ copied live.
* :class:`FollowUp`: the reload or restart a change owes a running service, recorded on the host before the
  change is made live and cleared only once it ran, so a run interrupted in between is finished by the next.
* :func:`stop_host`: fail one host on purpose with a message (no traceback), the others go on.
"""

from __future__ import annotations

import hashlib
import os
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from io import StringIO
from pathlib import Path
from typing import Any

import jinja2
from pyinfra import host, logger
from pyinfra.facts.files import Sha256File
from pyinfra.operations import files, python, server

from llmrack.facts.system import PendingMarks

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
APT_CACHE_MAX_AGE_S = 24 * 3600
APT_RETRIES = {"_retries": 3, "_retry_delay": 10}  # unattended-upgrades may hold the apt lock
PENDING_DIR = "/var/lib/llmrack/pending"
# drills only: every follow-up is left owed, as a run interrupted after its writes would leave the host
SKIP_FOLLOW_UPS_ENV = "LLMRACK_DRILL_SKIP_FOLLOW_UPS"


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


def install_checked(name: str, text: str, dest: str, check: str, *, after: str = "", mode: str = "644",
                    follow_up: FollowUp | None = None) -> Any:
    """Write ``dest`` only when it differs: upload ``dest.new``, run ``check`` on it (a shell command; ``{}`` is
    the quoted staged file), move it into place, then run ``after`` (a check of the whole configuration);
    when ``after`` fails the previous file is put back. Returns the move operation (restarts follow from its
    ``did_change``), or None when the host's file already matches. ``follow_up``: recorded as owed once the
    check passed, before the move."""
    if host.get_fact(Sha256File, path=dest) == sha256_text(text):
        return None
    put_text(f"Upload {dest}.new (candidate of {dest})", text, f"{dest}.new", mode=mode)
    op = server.shell(name=name, commands=[checked_install_script(
        dest, check, after=after, mark=follow_up.mark if follow_up else None)])
    if follow_up is not None:
        follow_up.after(op)
    return op


def checked_install_script(dest: str, check: str, *, after: str = "", mark: str | None = None) -> str:
    """The shell script that checks ``dest.new``, moves it over ``dest`` and, when ``after`` fails, puts the
    previous file back (exit 1 and a message on stderr on any refusal). ``mark``: a follow-up's mark, set
    after the check and before the move."""
    candidate, previous = f"{dest}.new", f"{dest}.llmrack-prev"
    q_new, q_dest, q_prev = shlex.quote(candidate), shlex.quote(dest), shlex.quote(previous)
    script = [
        f"if ! ( {check.format(q_new)} ); then rm -f {q_new}; echo 'rejected: {dest} left unchanged' >&2; exit 1; fi",
        *([mark_script(mark)] if mark else []),
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


@dataclass(frozen=True)
class SetFile:
    """One file of a set checked together: its text, mode and group (None: root's)."""

    text: str
    mode: str = "644"
    group: str | None = None


def install_set(name: str, wanted: Mapping[str, SetFile], *, staging: str, live: str, check: Callable[[list[str]],
                str], follow_up: FollowUp | None = None) -> list[str]:
    """Stage every file of ``wanted`` (paths relative to ``live``) under ``staging``; when some live files
    differ, one operation runs ``check(stale)`` (a shell command checking the staged set, "" for none), sets
    ``follow_up``'s mark and copies the stale files live. Returns the stale paths (empty: nothing to do)."""
    for path, f in wanted.items():
        put_text(f"Stage {path}", f.text, f"{staging}/{path}", mode=f.mode, group=f.group)
    stale = [p for p, f in wanted.items() if host.get_fact(Sha256File, path=f"{live}/{p}") != sha256_text(f.text)]
    if stale:
        copy = [f"cp -p {shlex.quote(f'{staging}/{p}')} {shlex.quote(f'{live}/{p}')}" for p in stale]
        steps = [c for c in (check(stale),) if c] + ([mark_script(follow_up.mark)] if follow_up else []) + copy
        op = server.shell(name=f"{name} ({', '.join(stale)})", commands=[" && ".join(steps)])
        if follow_up is not None:
            follow_up.after(op)
    return stale


def mark_script(mark: str) -> str:
    return f"mkdir -p {shlex.quote(mark.rsplit('/', 1)[0])} && touch {shlex.quote(mark)}"


class FollowUp:
    """The reload or restart a running service owes once one of its files changed.

    It is recorded on the host (a mark under :data:`PENDING_DIR`) before the first of those files is made live,
    and cleared only after it ran: a run interrupted in between, or one whose reload failed, leaves the mark and
    the next run runs it although every file already matches. So restarts follow from the host's state, not
    only from what this run happened to write. Use: create it, write through :meth:`put` (or pass it to
    :func:`install_checked` / :func:`install_set`), then :meth:`run` the reload."""

    def __init__(self, key: str, what: str, *, when: bool = True):
        """``when`` False: this host never runs it (writes go on, nothing is recorded or run)."""
        self.key, self.what, self.when = key, what, when
        self.mark = f"{PENDING_DIR}/{key}"
        self.left_over = when and key in _pending_marks()
        self._changes: list[Any] = []
        self._armed = False

    def after(self, *ops: Any) -> None:
        """Owe the follow-up when one of ``ops`` changes something (their mark set by themselves or by
        :meth:`arm`)."""
        self._changes += [op for op in ops if op is not None]

    def watch(self, *ops: Any) -> None:
        """Owe the follow-up when one of ``ops`` (operations whose change is known only when they ran, like a
        sync or an image load) changed something: the mark is set right after them."""
        ops = tuple(op for op in ops if op is not None)
        if ops and self.when:
            self.after(*ops)
            server.shell(name=f"Record that {self.what} is owed (cleared once it ran)",
                         commands=[mark_script(self.mark)], _if=lambda: any(op.did_change() for op in ops))

    def arm(self, will_change: bool) -> None:
        """Add the operation setting the mark when a write is about to change a file (once per follow-up)."""
        if will_change and self.when and not self._armed:
            server.shell(name=f"Record that {self.what} is owed (cleared once it ran)",
                         commands=[mark_script(self.mark)])
            self._armed = True

    def put(self, name: str, text: str, dest: str, mode: str = "644", **kwargs: Any) -> Any:
        """:func:`put_text`, the mark set first when the file is going to change."""
        self.arm(self.when and host.get_fact(Sha256File, path=dest) != sha256_text(text))
        op = put_text(name, text, dest, mode=mode, **kwargs)
        self.after(op)
        return op

    def put_file(self, name: str, src: str, dest: str, mode: str = "644") -> Any:
        """``files.put`` of a local file, the mark set first when the host's copy is going to change."""
        digest = hashlib.sha256(Path(src).read_bytes()).hexdigest()
        self.arm(self.when and host.get_fact(Sha256File, path=dest) != digest)
        op = files.put(name=name, src=src, dest=dest, mode=mode)
        self.after(op)
        return op

    def due(self) -> bool:
        """At execution: a write of this run changed something, or an earlier run left the mark."""
        return self.left_over or any(op.did_change() for op in self._changes)

    def run(self, operation: Callable[..., Any], *, name: str, unless: Callable[[], bool] | None = None,
            **kwargs: Any) -> Any:
        """Add ``operation(name=..., **kwargs)`` run when :meth:`due` (and not ``unless()``, e.g. the service
        was only just started with the new files), then clear the mark. Returns the operation, or None."""
        if not self.when or (not self.left_over and not self._changes):
            return None
        if os.environ.get(SKIP_FOLLOW_UPS_ENV):
            logger.warning(f"{host.print_prefix}drill: {self.what} left owed ({SKIP_FOLLOW_UPS_ENV})")
            return None
        op = operation(name=f"{name} (owed by an earlier run)" if self.left_over else name,
                       _if=lambda: self.due() and not (unless and unless()), **kwargs)
        server.shell(name=f"Clear the mark: {self.what} done", commands=[f"rm -f {shlex.quote(self.mark)}"],
                     _if=self.due)
        return op


def _pending_marks() -> frozenset[str]:
    """The marks on this host when the run began (read once per host and run)."""
    cache = _MARKS.setdefault(id(host.state), {})
    if host.name not in cache:
        cache[host.name] = frozenset(host.get_fact(PendingMarks, directory=PENDING_DIR))
    return cache[host.name]


_MARKS: dict[int, dict[str, frozenset[str]]] = {}


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

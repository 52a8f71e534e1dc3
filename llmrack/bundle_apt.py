"""The offline bundle's local APT repository: the packages a bare host needs beyond its installation media.

For each target release (``bookworm``) the bundle carries ``apt/<codename>/``: the .deb files of the tier's
packages with their whole dependency closure, a ``Packages`` index written by ``dpkg-scanpackages`` and a
``Release`` file. The closure comes from apt's own resolver (``apt-get install --download-only`` against an
empty dpkg status, in a private apt configuration: this machine's apt setup is untouched), so a host that
has nothing but its base system installs from it. Packages the builder cannot reach (NVIDIA's repositories)
come from ``--debs DIR`` (fetched on a connected machine); what is still missing is listed in the manifest
with how to add it. Hosts with ``base.apt.offline: true`` use this repository and no other source.
"""

from __future__ import annotations

import gzip
import hashlib
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from llmrack.errors import LlmrackError
from llmrack.packages import tier_packages

Log = Callable[[str], Any]
APT_DIR = "apt"
COMPONENTS = "main contrib non-free non-free-firmware"
HOW_TO_ADD = ("on a machine that reaches the package's repository run `apt-get download {pkg}` (with its "
              "dependencies), then `llmrack bundle build --tier {tier} --debs DIR` with the .deb files in DIR")


# The releases a tier's hardware.os_releases can name, by codename; the builder reaches Debian's mirror only.
RELEASES = {"debian 12": "bookworm", "debian 13": "trixie", "ubuntu 22.04": "jammy", "ubuntu 24.04": "noble"}
DEBIAN_CODENAMES = ("bookworm", "trixie")


def inventory_releases(inventory, tier: str) -> list[str]:  # noqa: ANN001 - llmrack.config.Inventory
    """The release codenames the inventory's hosts of ``tier`` run: each host's ``hardware.os_releases`` (the
    releases its preflight accepts, so the only ones it can run). An Ubuntu release, or no host of the tier,
    is bad input naming the host and field."""
    hosts = [h for h in inventory.hosts if h.tier == tier]
    if not hosts:
        raise LlmrackError(f"no host of the inventory uses tier {tier!r}", source=inventory.path, field="tier")
    out: set[str] = set()
    for h in hosts:
        for i, rel in enumerate(h.profile.hardware.os_releases):
            code = RELEASES.get(rel)
            if code not in DEBIAN_CODENAMES:
                raise LlmrackError(
                    f"host {h.name} accepts {rel!r}: the bundle's APT repository is built for "
                    f"{', '.join(k for k, v in RELEASES.items() if v in DEBIAN_CODENAMES)} "
                    "(narrow hardware.os_releases to the release the host runs)",
                    source=inventory.path, field=f"{h.name}.hardware.os_releases.{i}")
            out.add(code)
    return sorted(out)


def tier_apt_packages(profile) -> list[str]:
    """The distribution packages the stages of a tier install (:func:`llmrack.packages.tier_packages`: the
    lists the roles install), the set the bundle carries and the offline check compares with."""
    return tier_packages(profile)


def _apt_opts(tmp: Path) -> list[str]:
    opts = {
        "Dir::Etc::SourceList": f"{tmp}/etc/none.list", "Dir::Etc::SourceParts": f"{tmp}/etc/sources.list.d",
        "Dir::Etc::Preferences": f"{tmp}/etc/none.pref", "Dir::Etc::PreferencesParts": f"{tmp}/etc/preferences.d",
        "Dir::State::Lists": f"{tmp}/lists", "Dir::Cache": f"{tmp}/cache", "Dir::State::status": f"{tmp}/status",
        "APT::Sandbox::User": "root", "Acquire::Languages": "none", "APT::Architecture": "amd64",
        "APT::Architectures": "amd64", "Debug::NoLocking": "1", "APT::Install-Recommends": "false",
    }
    return [arg for k, v in opts.items() for arg in ("-o", f"{k}={v}")]


def _apt(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["apt-get", "-q", *_apt_opts(tmp), *args], capture_output=True, text=True, cwd=tmp)


def _scan(repo: Path) -> None:
    """``Packages`` (dpkg-scanpackages), ``Packages.gz`` and a ``Release`` with their sums."""
    done = subprocess.run(["dpkg-scanpackages", "--multiversion", "."], cwd=repo, capture_output=True, text=True)
    if done.returncode != 0:
        raise LlmrackError(f"dpkg-scanpackages failed in {repo}: {done.stderr.strip()[-800:]}")
    _replace(repo / "Packages", done.stdout.encode())
    _replace(repo / "Packages.gz", gzip.compress(done.stdout.encode(), mtime=0))
    lines = ["Origin: llmrack", "Label: llmrack offline bundle", "Architectures: amd64 all", "SHA256:"]
    for name in ("Packages", "Packages.gz"):
        data = (repo / name).read_bytes()
        lines.append(f" {hashlib.sha256(data).hexdigest()} {len(data)} {name}")
    _replace(repo / "Release", ("\n".join(lines) + "\n").encode())


def _replace(path: Path, data: bytes) -> None:
    """Write by rename (a bundle's files may be hard links of another bundle's: never edited in place)."""
    if path.is_file() and path.read_bytes() == data:
        return
    tmp = path.with_name(path.name + ".partial")
    tmp.write_bytes(data)
    tmp.replace(path)


def repo_packages(repo: Path) -> dict[str, str]:
    """``{package: version}`` of a repository's ``Packages`` index."""
    out: dict[str, str] = {}
    name = ""
    path = Path(repo) / "Packages"
    if not path.is_file():
        return out
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("Package: "):
            name = line.split(": ", 1)[1].strip()
        elif line.startswith("Version: ") and name:
            out[name] = line.split(": ", 1)[1].strip()
    return out


def build_apt_repo(
    out: Path, *, codename: str, mirror: str, packages: Iterable[str], extra_debs: Iterable[Path] = (),
    tier: str = "TIER", log: Log = print,
) -> dict:
    """Write ``out/apt/<codename>/`` with ``packages`` and their closure; returns its manifest section
    ``{"packages": {name: version}, "requested": [...], "missing": [{"package", "how"}]}``."""
    if not re.fullmatch(r"[a-z][a-z0-9-]{1,30}", codename):
        raise LlmrackError(f"{codename!r} is not a release codename (e.g. bookworm)", field="--release")
    repo = Path(out) / APT_DIR / codename
    repo.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="llmrack-apt-repo-") as tmp_s:
        tmp = Path(tmp_s)
        for sub in ("etc/sources.list.d", "etc/preferences.d", "lists/partial", "cache/archives/partial", "extra"):
            (tmp / sub).mkdir(parents=True)
        (tmp / "status").write_text("")
        for deb in extra_debs:
            deb = Path(deb)
            if not deb.is_file() or deb.suffix != ".deb":
                raise LlmrackError(f"{deb} is not a .deb file", field="debs")
            shutil.copy2(deb, tmp / "extra" / deb.name)
        if any((tmp / "extra").iterdir()):
            _scan(tmp / "extra")
        extra_names = set(repo_packages(tmp / "extra"))
        m = mirror.rstrip("/")
        (tmp / "etc/sources.list.d/release.sources").write_text(
            f"Types: deb\nURIs: {m}\nSuites: {codename} {codename}-updates\nComponents: {COMPONENTS}\n"
            "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
            + (f"\nTypes: deb\nURIs: file:{tmp}/extra\nSuites: ./\nTrusted: yes\n"
               if (tmp / "extra" / "Packages").exists() else ""))
        done = _apt(tmp, "update")
        if done.returncode != 0:
            why = (done.stderr or done.stdout).strip()[-1500:]
            raise LlmrackError(f"apt-get update ({codename}, {m}) failed: {why}")
        requested = sorted({*packages, *extra_names})
        available, missing = [], []
        for pkg in requested:
            show = subprocess.run(["apt-cache", *_apt_opts(tmp), "show", pkg], capture_output=True, text=True)
            (available if show.returncode == 0 and show.stdout.strip() else missing).append(pkg)
        if available:
            done = _apt(tmp, "install", "--download-only", "-y", *available)
            if done.returncode != 0:
                raise LlmrackError(f"apt could not resolve the packages for {codename}: "
                                   f"{(done.stderr or done.stdout).strip()[-1500:]}")
        got = sorted((tmp / "cache/archives").glob("*.deb"))
        keep = {d.name for d in got}
        for deb in got:
            dest = repo / deb.name
            if not (dest.is_file() and dest.stat().st_size == deb.stat().st_size):
                shutil.copy2(deb, dest.with_name(dest.name + ".partial"))
                dest.with_name(dest.name + ".partial").replace(dest)
        for old in repo.glob("*.deb"):
            if old.name not in keep:
                old.unlink()
    _scan(repo)
    have = repo_packages(repo)
    size = sum(p.stat().st_size for p in repo.glob("*.deb"))
    log(f"apt/{codename}: {len(have)} packages ({len(requested)} asked for, {len(missing)} missing), "
        f"{size / 2**20:.0f} MiB, {time.monotonic() - t0:.1f} s")
    for pkg in missing:
        log(f"apt/{codename}: {pkg} is missing: {HOW_TO_ADD.format(pkg=pkg, tier=tier)}")
    return {"packages": have, "requested": requested,
            "missing": [{"package": p, "how": HOW_TO_ADD.format(pkg=p, tier=tier)} for p in missing]}


def offline_problems(needed: Iterable[str], bundle_apt: dict | None, installed: dict[str, Any],
                     codename: str) -> list[str]:
    """Packages a host with ``base.apt.offline`` cannot get: neither installed nor in the bundle's repository
    for its release. Each message names the package and what to do."""
    if not bundle_apt or codename not in bundle_apt:
        return [f"the bundle has no APT repository for {codename or 'this release'}: build it with "
                "`llmrack bundle build` for an inventory that uses this release"]
    have = bundle_apt[codename].get("packages", {})
    return [f"package {p} is neither installed on the host nor in the bundle's apt/{codename} repository: "
            f"{HOW_TO_ADD.format(pkg=p, tier='TIER')}" for p in sorted(set(needed))
            if p not in installed and p not in have]

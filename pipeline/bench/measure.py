"""How a benchmarked command is timed, and where its numbers are written (standard library only:
`peers.py` imports it from the peers venv, where this package's dependencies are not installed).

A command runs as a child process; the wall time is measured around it, CPU time and peak
RSS come from `os.wait4` on that child (the same fields as getrusage(RUSAGE_CHILDREN) after
the wait, for this child alone). ru_maxrss is the largest single process of the child's
tree; with worker processes the tree's total is sampled from /proc every SAMPLE_S seconds.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

SAMPLE_S = 0.25  # the tree's RSS is sampled this often; short peaks between samples are missed
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def _tree_rss_kb(root: int) -> int:
    """Resident memory of `root` and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry)
        children.setdefault(int(fields[1]), []).append(pid)
        rss[pid] = int(fields[21]) * PAGE_KB
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, ()))
    return total


def run_child(command: Sequence[str], env: Mapping[str, str] | None = None,
              cwd: Path | None = None) -> dict[str, Any]:
    """Run `command`; its wall, user and system seconds, peak RSS (MB) and exit code."""
    started = time.perf_counter()
    process = subprocess.Popen(list(command), env=dict(env) if env is not None else None, cwd=cwd,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(SAMPLE_S):
            peak[0] = max(peak[0], _tree_rss_kb(process.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    # stderr is drained by a thread so a chatty child never blocks on a full pipe.
    errors: list[bytes] = []
    reader = threading.Thread(target=lambda: errors.append(process.stderr.read()), daemon=True)
    reader.start()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    done.set()
    sampler.join()
    reader.join()
    process.returncode = os.waitstatus_to_exitcode(status)
    return {"wall_s": wall, "user_s": usage.ru_utime, "sys_s": usage.ru_stime,
            "maxrss_mb": usage.ru_maxrss / 1024, "tree_rss_mb": peak[0] / 1024,
            "exit_code": process.returncode, "stderr": b"".join(errors).decode("utf-8", "replace")[-2000:]}


def machine_info() -> dict[str, str]:
    """CPU model, cores, memory, OS, Python and the load average when asked."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = "unknown"
    try:
        kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
        memory = f"{kb / 1024 / 1024:.1f} GB"
    except (OSError, AttributeError):
        pass
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return {"cpu": model, "cores": str(os.cpu_count()), "memory": memory,
            "os": f"{platform.system()} {platform.release()}", "python": platform.python_version(),
            "load average (1, 5, 15 min)": load}


def now_utc() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def update_section(path: Path, key: str, text: str) -> None:
    """Replace the section `key` of a Markdown file (between marker comments), or append it;
    other sections are kept. Written to a temp file in the same folder, then renamed."""
    begin, end = f"<!-- {key} -->", f"<!-- /{key} -->"
    block = f"{begin}\n{text.rstrip()}\n{end}\n"
    old = path.read_text(encoding="utf-8") if path.is_file() else ""
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end) + r"\n?", re.DOTALL)
    new = pattern.sub(lambda _: block, old, count=1) if pattern.search(old) else (old.rstrip() + "\n\n" + block
                                                                                  if old.strip() else block)
    write_atomic(path, new)


def write_atomic(path: Path, text: str) -> None:
    """Write to a temp file in the same folder, then rename: readers see the old or the new file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)

"""A memory census of the running process, written as one JSON line every so often (bench diagnosis, issue 18).

What the soak's RSS curve cannot say is *where* memory goes. Each census line has:

* ``rss_kib``: the resident set (``/proc/self/status``);
* ``malloc``: glibc's ``mallinfo2`` — ``arena`` (heap from sbrk), ``hblkhd`` (mmapped blocks), ``uordblks``
  (in use), ``fordblks`` (free but kept), so freed-but-kept memory (fragmentation) is told apart from live memory;
* ``pymalloc_blocks``: ``sys.getallocatedblocks()``, Python's own live blocks;
* ``sqlite_bytes``: SQLite's ``sqlite3_memory_used`` (page caches and statements of every connection);
* ``threads`` and ``gc_objects`` (objects the collector tracks), with the ``top`` object types by count.

Taking a census walks every tracked object (about 0.1 s for a server), so it is for diagnosis runs, not for the
figures: ``bench/run.py --census-every SECONDS`` turns it on for both security servers.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import json
import os
import sys
import threading
import time
from collections import Counter
from typing import Any, Callable, TextIO

from bench.measure import rss_kib


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


def _libc() -> Any:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
        return libc
    except (OSError, AttributeError):
        return None


def _sqlite() -> Any:
    try:
        import sqlite3  # noqa: F401  (loads the library this process uses)

        library = ctypes.CDLL(ctypes.util.find_library("sqlite3") or "libsqlite3.so.0")
        library.sqlite3_memory_used.restype = ctypes.c_int64
        return library
    except (OSError, AttributeError):
        return None


_LIBC = _libc()
_SQLITE = _sqlite()


def census(top: int = 40) -> dict[str, Any]:
    """One census of this process (see the module's docstring)."""
    objects = gc.get_objects()
    counts = Counter(type(obj).__qualname__ for obj in objects)
    line: dict[str, Any] = {
        "time": round(time.time(), 1),
        "rss_kib": rss_kib(os.getpid()),
        "pymalloc_blocks": sys.getallocatedblocks(),
        "threads": threading.active_count(),
        "gc_objects": len(objects),
        "gc_collections": [generation["collections"] for generation in gc.get_stats()],
        "gc_count": gc.get_count(),
        "gc_threshold": gc.get_threshold(),
        "top": counts.most_common(top),
    }
    del objects
    if _LIBC is not None:
        info = _LIBC.mallinfo2()
        line["malloc"] = {field[0]: getattr(info, field[0]) for field in _MallInfo2._fields_}
    if _SQLITE is not None:
        line["sqlite_bytes"] = _SQLITE.sqlite3_memory_used()
    return line


def write_census(out: TextIO, referrers_of: tuple[str, ...] = (), extra: Callable[[], dict[str, Any]] | None = None) -> None:
    """Append one census line to ``out``, with the referrer chains of some objects of the types ``referrers_of`` and
    what ``extra`` adds (the server's own figures)."""
    line = census()
    if extra is not None:
        line.update(extra())
    if referrers_of:
        line["referrers"] = {name: referrer_chains(name) for name in referrers_of}
        # Diagnosis of cyclic garbage: what a full collection finds, and the resident set after it.
        line["full_collection_found"] = gc.collect()
        line["rss_kib_after_collection"] = rss_kib(os.getpid())
        line["pymalloc_blocks_after_collection"] = sys.getallocatedblocks()
        if _LIBC is not None:  # and what glibc gives back when asked: free pages inside its arenas
            started = time.perf_counter()
            _LIBC.malloc_trim(0)
            line["malloc_trim_ms"] = round((time.perf_counter() - started) * 1000, 2)
            line["rss_kib_after_trim"] = rss_kib(os.getpid())
    out.write(json.dumps(line) + "\n")
    out.flush()


def _describe(obj: object) -> str:
    kind = type(obj).__qualname__
    if isinstance(obj, dict):
        keys = [repr(key)[:40] for key in list(obj)[:6]]
        return f"dict({len(obj)}: {', '.join(keys)})"
    if isinstance(obj, (list, tuple, set, frozenset)):
        return f"{kind}({len(obj)})"
    if type(obj).__name__ == "frame":
        code = obj.f_code  # type: ignore[attr-defined]
        return f"frame({code.co_filename.rsplit('/', 2)[-1]}:{code.co_name})"
    if type(obj).__name__ == "cell":
        return "cell"
    if callable(obj) and hasattr(obj, "__qualname__"):
        return f"{kind}({obj.__qualname__})"
    return kind


def referrer_chains(type_name: str, samples: int = 3, depth: int = 6) -> list[list[str]]:
    """For up to ``samples`` objects of type ``type_name``, the chain of first referrers up to ``depth`` steps,
    so a census that shows a type growing can say what holds it."""
    objects = gc.get_objects()
    found = [obj for obj in objects if type(obj).__qualname__ == type_name]
    del objects
    chains: list[list[str]] = []
    for obj in found[:samples]:
        chain = [_describe(obj)]
        current: object = obj
        seen = {id(found), id(obj), id(chain), id(chains)}
        for _ in range(depth):
            referrers = gc.get_referrers(current)
            seen.add(id(referrers))
            holders = [held for held in referrers if id(held) not in seen and type(held).__name__ != "frame"]
            seen.add(id(holders))
            if not holders:
                chain.append("(no referrer)")
                break
            chain.append(" | ".join(_describe(held) for held in holders[:4]))
            seen.update(id(held) for held in holders)
            current = holders[0]
            del referrers
        chains.append(chain)
    return chains
